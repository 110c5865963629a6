// Tests of atomic file writing and whole-file reading (io/atomic_file.h).
#include "greenmoe/io/atomic_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "greenmoe/core/error.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
using testing::TempDir;

std::vector<std::string> folder_entries(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

TEST(IoAtomicFile, WriteFileAtomicWritesExactBytesAndLeavesNoTemp) {
    TempDir dir;
    const std::string bytes("binary\0data\n\xff", 13);
    write_file_atomic(dir / "out.bin", bytes);
    EXPECT_EQ(read_file(dir / "out.bin"), bytes);
    EXPECT_EQ(folder_entries(dir.path()), std::vector<std::string>{"out.bin"});
}

TEST(IoAtomicFile, EmptyFile) {
    TempDir dir;
    write_file_atomic(dir / "empty", "");
    EXPECT_TRUE(std::filesystem::exists(dir / "empty"));
    EXPECT_EQ(read_file(dir / "empty"), "");
}

TEST(IoAtomicFile, TempFileIsHiddenBesideTheTargetUntilCommit) {
    TempDir dir;
    AtomicFileWriter writer(dir / "model.safetensors");
    writer.write("abc", 3);
    const std::string temp = ".model.safetensors.tmp." + std::to_string(::getpid());
    EXPECT_EQ(folder_entries(dir.path()), std::vector<std::string>{temp});
    writer.commit();
    EXPECT_EQ(folder_entries(dir.path()), std::vector<std::string>{"model.safetensors"});
    EXPECT_EQ(read_file(dir / "model.safetensors"), "abc");
}

TEST(IoAtomicFile, DestroyedWithoutCommitLeavesNoFileAndNoTemp) {
    TempDir dir;
    {
        AtomicFileWriter writer(dir / "out.bin");
        writer.write("partial", 7);
    }
    EXPECT_FALSE(std::filesystem::exists(dir / "out.bin"));
    EXPECT_TRUE(folder_entries(dir.path()).empty());
}

TEST(IoAtomicFile, DestroyedWithoutCommitKeepsTheOldFile) {
    TempDir dir;
    write_file_atomic(dir / "out.txt", "old contents");
    {
        AtomicFileWriter writer(dir / "out.txt");
        writer.write("new", 3);
    }
    EXPECT_EQ(read_file(dir / "out.txt"), "old contents");
    EXPECT_EQ(folder_entries(dir.path()), std::vector<std::string>{"out.txt"});
}

TEST(IoAtomicFile, CommitReplacesAnExistingFile) {
    TempDir dir;
    write_file_atomic(dir / "out.txt", "a much longer old content that must disappear entirely");
    write_file_atomic(dir / "out.txt", "new");
    EXPECT_EQ(read_file(dir / "out.txt"), "new");
    EXPECT_EQ(folder_entries(dir.path()), std::vector<std::string>{"out.txt"});
}

TEST(IoAtomicFile, StreamingWritesConcatenate) {
    TempDir dir;
    std::string expected;
    {
        AtomicFileWriter writer(dir / "big.bin");
        // A few MB in uneven pieces, so that the kernel may well split some writes.
        std::string piece;
        for (int i = 0; i < 40; ++i) {
            piece.assign(static_cast<size_t>(1000 + i * 9001), static_cast<char>('a' + i % 26));
            writer.write(piece.data(), piece.size());
            expected += piece;
        }
        writer.write(nullptr, 0);
        writer.commit();
    }
    const std::string got = read_file(dir / "big.bin");
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected);
}

TEST(IoAtomicFile, WritingIntoAMissingFolderNamesThePath) {
    TempDir dir;
    const auto path = dir / "no_such_folder" / "out.bin";
    const std::string message = error_message([&] { write_file_atomic(path, "x"); });
    EXPECT_THAT(message, HasSubstr(path.string()));
    EXPECT_THAT(message, HasSubstr("No such file or directory"));
    EXPECT_FALSE(std::filesystem::exists(dir / "no_such_folder"));
}

TEST(IoAtomicFile, WriteOrCommitAfterCommitIsAnError) {
    TempDir dir;
    AtomicFileWriter writer(dir / "out.bin");
    writer.commit();
    EXPECT_THAT(error_message([&] { writer.write("x", 1); }), HasSubstr("already committed"));
    EXPECT_THAT(error_message([&] { writer.commit(); }), HasSubstr("already committed"));
    EXPECT_EQ(read_file(dir / "out.bin"), "");
}

TEST(IoAtomicFile, CommitOverAFolderFailsAndCleansUp) {
    TempDir dir;
    std::filesystem::create_directory(dir / "taken");
    write_file_atomic(dir / "taken" / "inside", "keep");
    const std::string message = error_message([&] {
        AtomicFileWriter writer(dir / "taken");
        writer.write("x", 1);
        writer.commit();
    });
    EXPECT_THAT(message, HasSubstr((dir / "taken").string()));
    EXPECT_EQ(folder_entries(dir.path()), std::vector<std::string>{"taken"});
    EXPECT_EQ(read_file(dir / "taken" / "inside"), "keep");
}

TEST(IoAtomicFile, RelativePathInTheCurrentFolder) {
    TempDir dir;
    // A bare file name has an empty parent path; the folder to sync is then ".".
    struct CwdGuard {
        std::filesystem::path old = std::filesystem::current_path();
        ~CwdGuard() { std::filesystem::current_path(old); }
    } guard;
    std::filesystem::current_path(dir.path());
    write_file_atomic("relative.txt", "here");
    EXPECT_EQ(read_file(dir / "relative.txt"), "here");
}

TEST(IoAtomicFile, ReadFileErrorsNameThePath) {
    TempDir dir;
    EXPECT_THAT(error_message([&] { read_file(dir / "missing.txt"); }),
                HasSubstr((dir / "missing.txt").string()));
    EXPECT_THAT(error_message([&] { read_file(dir.path()); }), HasSubstr("not a regular file"));
}

}  // namespace
}  // namespace greenmoe

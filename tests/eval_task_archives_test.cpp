// Benchmark data read from the .zip releases users download (ARC-V1-Feb2018.zip,
// winogrande_1.1.zip) without unpacking: the same instances as from the unpacked files, and a
// damaged archive or member named in one error.
#include <gtest/gtest.h>
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "greenmoe/eval/tasks/task_files.h"
#include "greenmoe/eval/tasks/tasks.h"
#include "greenmoe/io/zip_archive.h"
#include "test_support.h"

namespace greenmoe::tasks {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

fs::path fixtures() {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "lm-eval";
}

// Writes `archive` holding each (member name, file) pair, deflated as the releases are.
void write_zip(const fs::path& archive,
               const std::vector<std::pair<std::string, fs::path>>& files) {
    int code = 0;
    zip_t* zip = zip_open(archive.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
    ASSERT_NE(zip, nullptr) << code;
    for (const auto& [member, file] : files) {
        zip_source_t* source = zip_source_file(zip, file.c_str(), 0, -1);
        ASSERT_NE(source, nullptr) << file;
        const zip_int64_t index = zip_file_add(zip, member.c_str(), source, ZIP_FL_ENC_UTF_8);
        ASSERT_GE(index, 0) << member;
        zip_set_file_compression(zip, zip_uint64_t(index), ZIP_CM_DEFLATE, 9);
    }
    ASSERT_EQ(zip_close(zip), 0) << zip_strerror(zip);
}

void expect_same_instances(const std::vector<Instance>& a, const std::vector<Instance>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].candidates.size(), b[i].candidates.size());
        for (size_t c = 0; c < a[i].candidates.size(); ++c) {
            EXPECT_EQ(a[i].candidates[c].context, b[i].candidates[c].context);
            EXPECT_EQ(a[i].candidates[c].continuation, b[i].candidates[c].continuation);
        }
        EXPECT_EQ(a[i].gold, b[i].gold);
    }
}

TEST(TaskArchives, ArcAndWinograndeFromTheirZipReleases) {
    TempDir dir;
    // The layouts of the releases: ARC-V1-Feb2018-2/ARC-Easy/…, winogrande_1.1/….
    write_zip(dir / "ARC-V1-Feb2018.zip", {{"ARC-V1-Feb2018-2/ARC-Easy/ARC-Easy-Test.jsonl",
                                            fixtures() / "arc_easy/ARC-Easy-Test.jsonl"},
                                           {"ARC-V1-Feb2018-2/ARC-Easy/ARC-Easy-Train.jsonl",
                                            fixtures() / "arc_easy/ARC-Easy-Train.jsonl"}});
    write_zip(dir / "winogrande_1.1.zip",
              {{"winogrande_1.1/dev.jsonl", fixtures() / "winogrande/dev.jsonl"},
               {"winogrande_1.1/train_xl.jsonl", fixtures() / "winogrande/train_xl.jsonl"}});
    for (const std::string task : {"arc_easy", "winogrande"}) {
        SCOPED_TRACE(task);
        TaskOptions zipped, unpacked;
        zipped.data_dir = dir.path();
        unpacked.data_dir = fixtures();
        zipped.num_fewshot = unpacked.num_fewshot = 3;
        const auto from_zip = build_task(task, zipped);
        expect_same_instances(from_zip, build_task(task, unpacked));
        // Documents are named through the archive, for messages.
        EXPECT_NE(from_zip.front().doc_id.find(".zip/"), std::string::npos)
            << from_zip.front().doc_id;
    }
}

TEST(TaskArchives, ArchivePathsSplitAtTheZip) {
    TempDir dir;
    write_zip(dir / "a.zip", {{"x/y.jsonl", fixtures() / "arc_easy/ARC-Easy-Test.jsonl"}});
    const auto inside = split_archive_path(dir / "a.zip/x/y.jsonl");
    ASSERT_TRUE(inside.has_value());
    EXPECT_EQ(inside->archive, dir / "a.zip");
    EXPECT_EQ(inside->member, "x/y.jsonl");
    EXPECT_FALSE(split_archive_path(dir / "a.zip").has_value());
    EXPECT_FALSE(split_archive_path(dir / "b.zip/x/y.jsonl").has_value());
    const ZipArchive archive = ZipArchive::open(dir / "a.zip");
    EXPECT_EQ(archive.members(), std::vector<std::string>{"x/y.jsonl"});
    EXPECT_NE(
        testing::error_message([&] { archive.read("x/z.jsonl"); }).find("no member x/z.jsonl"),
        std::string::npos);
    EXPECT_NE(testing::error_message([&] { archive.read("x/y.jsonl", 10); }).find("more than"),
              std::string::npos);
}

// Flips one byte of the deflated data: the CRC check refuses the member by name.
TEST(TaskArchives, DamagedMemberAndNonZipAreOneError) {
    TempDir dir;
    write_zip(dir / "ARC-V1-Feb2018.zip",
              {{"ARC-Easy/ARC-Easy-Test.jsonl", fixtures() / "arc_easy/ARC-Easy-Test.jsonl"}});
    std::string bytes = testing::read_text_file(dir / "ARC-V1-Feb2018.zip");
    // Local header (30 bytes) + the member name, then the compressed data.
    const size_t data = 30 + std::string("ARC-Easy/ARC-Easy-Test.jsonl").size();
    bytes[data + 40] = char(bytes[data + 40] ^ 0x5a);
    testing::write_text_file(dir / "ARC-V1-Feb2018.zip", bytes);
    TaskOptions o;
    o.data_dir = dir.path();
    const std::string message = testing::error_message([&] { build_task("arc_easy", o); });
    EXPECT_NE(message.find("ARC-V1-Feb2018.zip"), std::string::npos) << message;
    EXPECT_NE(message.find("ARC-Easy-Test.jsonl"), std::string::npos) << message;

    testing::write_text_file(dir / "not-a.zip", "plain text");
    EXPECT_NE(testing::error_message([&] {
                  ZipArchive::open(dir / "not-a.zip");
              }).find("cannot read as a zip archive"),
              std::string::npos);
}

}  // namespace
}  // namespace greenmoe::tasks

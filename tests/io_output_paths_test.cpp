// Output paths refused at the start of a command, naming the option and why.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "greenmoe/core/error.h"
#include "greenmoe/io/output_paths.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;

std::string usage_message(const std::function<void()>& f) {
    try {
        f();
    } catch (const UsageError& e) {
        return e.what();
    }
    return "(no UsageError)";
}

TEST(IoOutputPaths, NewPathsUnderWritableFoldersAreAccepted) {
    testing::TempDir tmp;
    EXPECT_NO_THROW(check_output_file(tmp / "a" / "b" / "result.json", "--json"));
    EXPECT_NO_THROW(check_output_folder(tmp / "run", "--out"));
    testing::write_text_file(tmp / "old.csv", "x\n");
    EXPECT_NO_THROW(check_output_file(tmp / "old.csv", "--csv"));
    EXPECT_NO_THROW(check_output_folder(tmp.path(), "--out"));
    EXPECT_FALSE(fs::exists(tmp / "a"));  // checking creates nothing
}

TEST(IoOutputPaths, FilesWhereFoldersAreNeededAndTheReverse) {
    testing::TempDir tmp;
    testing::write_text_file(tmp / "file", "x");
    EXPECT_NE(usage_message([&] { check_output_file(tmp / "file" / "r.json", "--json"); })
                  .find("--json " + (tmp / "file" / "r.json").string() + ": " +
                        (tmp / "file").string() + " is not a folder"),
              std::string::npos);
    EXPECT_NE(usage_message([&] {
                  check_output_folder(tmp / "file", "--out");
              }).find("is a file, expected a folder"),
              std::string::npos);
    EXPECT_NE(usage_message([&] {
                  check_output_file(tmp.path(), "--csv");
              }).find("--csv " + tmp.path().string() + ": is a folder, expected a file name"),
              std::string::npos);
}

TEST(IoOutputPaths, ReadOnlyFolderIsRefused) {
    if (::geteuid() == 0) GTEST_SKIP() << "root may write anywhere";
    testing::TempDir tmp;
    fs::create_directories(tmp / "ro");
    fs::permissions(tmp / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_NE(usage_message([&] {
                  check_output_file(tmp / "ro" / "x.json", "--json");
              }).find("cannot write in"),
              std::string::npos);
    fs::permissions(tmp / "ro", fs::perms::owner_all);
}

}  // namespace
}  // namespace greenmoe

// log.jsonl writing: invalid UTF-8 in a sample, and dropping lines past a resume point.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <csignal>
#include <sstream>

#include "greenmoe/io/atomic_file.h"
#include "greenmoe/train/run_log.h"
#include "test_support.h"

namespace greenmoe {
namespace {

TEST(RunLog, TextWithInvalidUtf8IsWrittenWithReplacementCharacters) {
    testing::TempDir tmp;
    {
        RunLog log(tmp / "log.jsonl", 0);
        // A sample cut in the middle of "é" (0xC3 0xA9), then a stray continuation byte.
        log.write({{"type", "sample"}, {"step", 1}, {"text", std::string("caf\xc3 \xa9!")}});
    }
    const auto j = nlohmann::json::parse(read_file(tmp / "log.jsonl"));
    EXPECT_EQ(j["text"], "caf\xef\xbf\xbd \xef\xbf\xbd!");
}

TEST(RunLog, KeepsWhatCameBeforeTheResumeStep) {
    // Resuming from the checkpoint of step 2: train records 1 and 2 stay (steps 1…N, the
    // update just done); the validation at step 2 (measured before update 3) and everything
    // later go, as the resumed run logs them again.
    testing::TempDir tmp;
    testing::write_text_file(
        tmp / "log.jsonl",
        "{\"type\":\"start\"}\n{\"type\":\"val\",\"step\":0}\n{\"type\":\"train\",\"step\":1}\n"
        "{\"type\":\"train\",\"step\":2}\n{\"type\":\"val\",\"step\":2}\n"
        "{\"type\":\"sample\",\"step\":2}\n{\"type\":\"train\",\"step\":3}\n{\"type\":\"tr");
    { RunLog log(tmp / "log.jsonl", 2); }
    EXPECT_EQ(
        read_file(tmp / "log.jsonl"),
        "{\"type\":\"start\"}\n{\"type\":\"val\",\"step\":0}\n{\"type\":\"train\",\"step\":1}\n"
        "{\"type\":\"train\",\"step\":2}\n");
}

TEST(RunLog, TornLastLineIsDroppedWithAWarningDamageElsewhereIsAnError) {
    testing::TempDir tmp;
    const auto path = tmp / "log.jsonl";
    testing::write_text_file(path, "{\"type\":\"start\"}\n{\"type\":\"train\",\"step\":0}\n{\"ty");
    {
        RunLog log(path, 5);
        EXPECT_NE(log.warning().find("log.jsonl:3: the last line is cut off"), std::string::npos)
            << log.warning();
        log.write({{"type", "train"}, {"step", 1}});
    }
    EXPECT_EQ(read_file(path),
              "{\"type\":\"start\"}\n{\"type\":\"train\",\"step\":0}\n"
              "{\"step\":1,\"type\":\"train\"}\n");

    testing::write_text_file(path,
                             "{\"type\":\"start\"}\n{\"ty\n{\"type\":\"train\",\"step\":0}\n");
    const std::string msg = testing::error_message([&] { RunLog log(path, 5); });
    EXPECT_NE(msg.find("log.jsonl:2:"), std::string::npos) << msg;
}

// Restores the file size limit (and SIGXFSZ) when the test ends.
class FileSizeLimit {
  public:
    explicit FileSizeLimit(rlim_t bytes) {
        getrlimit(RLIMIT_FSIZE, &saved_);
        old_handler_ = std::signal(SIGXFSZ, SIG_IGN);  // a write past it fails with EFBIG
        rlimit lower = saved_;
        lower.rlim_cur = bytes;
        ok_ = setrlimit(RLIMIT_FSIZE, &lower) == 0;
    }
    ~FileSizeLimit() {
        setrlimit(RLIMIT_FSIZE, &saved_);
        std::signal(SIGXFSZ, old_handler_);
    }
    bool ok() const { return ok_; }

  private:
    rlimit saved_{};
    void (*old_handler_)(int) = nullptr;
    bool ok_ = false;
};

TEST(RunLog, AFailedWriteLeavesNoTornLine) {
    testing::TempDir tmp;
    const auto path = tmp / "log.jsonl";
    RunLog log(path, 0);
    log.write({{"type", "start"}});
    const std::string before = read_file(path);
    std::string message;
    {
        // The disk fills up (here: the file size limit) in the middle of a long record.
        const FileSizeLimit limit(before.size() + 100);
        ASSERT_TRUE(limit.ok());
        message = testing::error_message([&] {
            log.write({{"type", "sample"}, {"step", 1}, {"text", std::string(5000, 'x')}});
        });
    }
    EXPECT_NE(message.find("log.jsonl: write failed"), std::string::npos) << message;
    EXPECT_EQ(read_file(path), before);
    // The next record starts on a line of its own.
    log.write({{"type", "train"}, {"step", 1}});
    EXPECT_EQ(read_file(path), before + "{\"step\":1,\"type\":\"train\"}\n");
}

}  // namespace
}  // namespace greenmoe

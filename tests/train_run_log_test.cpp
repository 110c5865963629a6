// log.jsonl writing: invalid UTF-8 in a sample, and dropping lines past a resume point.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

TEST(RunLog, KeepsOnlyLinesBeforeTheResumeStep) {
    testing::TempDir tmp;
    testing::write_text_file(tmp / "log.jsonl",
                             "{\"type\":\"start\"}\n{\"type\":\"train\",\"step\":0}\n"
                             "{\"type\":\"train\",\"step\":1}\n{\"type\":\"val\",\"step\":2}\n"
                             "{\"type\":\"tr");
    { RunLog log(tmp / "log.jsonl", 2); }
    EXPECT_EQ(read_file(tmp / "log.jsonl"),
              "{\"type\":\"start\"}\n{\"type\":\"train\",\"step\":0}\n"
              "{\"type\":\"train\",\"step\":1}\n");
}

}  // namespace
}  // namespace greenmoe

// One step numbering in log.jsonl: train records 1…N (the update just done), validation and
// samples at the number of updates done (0: before training), the last ones at N, and
// energy records that say their PUE.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "greenmoe/io/atomic_file.h"
#include "greenmoe/train/trainer.h"
#include "test_support.h"

namespace greenmoe {
namespace {

std::vector<nlohmann::json> records(const std::filesystem::path& path, const std::string& type) {
    std::istringstream in(read_file(path));
    std::vector<nlohmann::json> out;
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line);
        if (j["type"] == type) out.push_back(j);
    }
    return out;
}

std::vector<int64_t> steps_of(const std::vector<nlohmann::json>& rs) {
    std::vector<int64_t> out;
    for (const auto& r : rs) out.push_back(r["step"].get<int64_t>());
    return out;
}

TEST(TrainStepNumbering, TrainRecordsCountFromOneAndEvaluationsShareTheNumbers) {
    testing::TempDir tmp;
    TrainConfig c;
    c.model.n_layer = 1;
    c.model.n_head = 2;
    c.model.n_embd = 32;
    c.model.block_size = 16;
    c.batch_size = 2;
    c.seq_len = 16;
    c.max_steps = 6;
    c.log_every = 3;
    c.val_every = 3;
    c.val_tokens = 256;
    c.sample_every = 3;
    c.sample_tokens = 4;
    c.checkpoint_every = 0;
    c.dataset = "tinyshakespeare";
    TrainOptions o;
    o.out_dir = tmp / "run";
    o.data.data_dir = testing::shared_data();
    o.data.cache_dir = tmp / "cache";
    o.data.tokenizer_dir = testing::tokenizer_dir();
    o.quiet = true;
    train(c, o);
    const auto log = tmp / "run/log.jsonl";
    // The first step, every log_every-th, and the last.
    EXPECT_EQ(steps_of(records(log, "train")), (std::vector<int64_t>{1, 3, 6}));
    EXPECT_EQ(steps_of(records(log, "val")), (std::vector<int64_t>{0, 3, 6}));
    EXPECT_EQ(steps_of(records(log, "sample")), (std::vector<int64_t>{3, 6}));
    EXPECT_EQ(steps_of(records(log, "done")), (std::vector<int64_t>{6}));
    const auto start = records(log, "start");
    ASSERT_EQ(start.size(), 1u);
    EXPECT_EQ(start[0]["log_version"], 2);
    // Energy figures include the PUE, and say which.
    for (const auto& t : records(log, "train")) {
        ASSERT_TRUE(t.contains("pue")) << t.dump();
        EXPECT_GE(t["pue"].get<double>(), 1.0);
    }
    EXPECT_TRUE(records(log, "done")[0].contains("pue"));
}

}  // namespace
}  // namespace greenmoe

// Every MoE variant trains on tinyshakespeare with falling loss, logs its routing
// statistics, and resumes exactly (balancing bias and random draws included).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/train/trainer.h"
#include "test_support.h"

namespace greenmoe {
namespace {

TrainConfig moe_config(const std::string& variant, int64_t steps) {
    TrainConfig c;
    c.model.n_layer = 2;
    c.model.n_head = 2;
    c.model.n_embd = 32;
    c.model.block_size = 32;
    if (variant == "moa") {
        c.model.attn = "moa";
    } else {
        c.model.mlp = variant;
    }
    c.model.n_experts = 4;
    c.model.top_k = 2;
    c.model.w_load = 0.01f;
    c.model.w_importance = 0.01f;
    c.model.lambda_z = 0.001f;
    c.model.w_penalty = 0.01f;
    c.model.bias_gamma = 0.01f;
    c.batch_size = 4;
    c.seq_len = 32;
    c.max_steps = steps;
    c.lr = 3e-3f;
    c.warmup_steps = 2;
    c.val_every = 10;
    c.val_tokens = 512;
    c.sample_every = 0;
    c.checkpoint_every = 10;
    return c;
}

TrainOptions options_for(const testing::TempDir& tmp, const std::string& run) {
    TrainOptions o;
    o.out_dir = tmp / run;
    o.data.data_dir = testing::shared_data();
    o.data.cache_dir = tmp / "cache";
    o.quiet = true;
    return o;
}

std::vector<nlohmann::json> train_lines(const std::filesystem::path& log) {
    std::istringstream in(read_file(log));
    std::vector<nlohmann::json> out;
    std::string line;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line);
        if (j["type"] == "train") out.push_back(j);
    }
    return out;
}

class MoeTraining : public ::testing::TestWithParam<std::string> {};

TEST_P(MoeTraining, LossFallsStatisticsAreLoggedAndResumeIsExact) {
    const std::string variant = GetParam();
    testing::TempDir tmp;
    train(moe_config(variant, 20), options_for(tmp, "straight"));
    const auto lines = train_lines(tmp / "straight/log.jsonl");
    ASSERT_EQ(lines.size(), 20u);
    double first = 0, last = 0;
    for (int i = 0; i < 4; ++i) {
        first += lines[i]["loss"].get<double>() / 4;
        last += lines[16 + i]["loss"].get<double>() / 4;
    }
    EXPECT_LT(last, first - 0.5) << variant << ": first " << first << " last " << last;

    // Routing statistics of every MoE layer, every step.
    const auto& moe = lines.back()["moe"];
    ASSERT_EQ(moe.size(), 2u);
    for (const auto& layer : moe) {
        double total = 0;
        for (const auto& f : layer["load"]) total += f.get<double>();
        EXPECT_NEAR(total, 1.0, 1e-9);
        for (const char* key : {"dropped", "load_cv", "entropy", "aux_load", "aux_importance",
                                "aux_z", "aux_penalty", "bias"}) {
            EXPECT_TRUE(layer.contains(key)) << key;
        }
    }
    EXPECT_GT(lines.back()["aux_loss"].get<double>(), 0.0);

    // The balancing bias moved, and is saved with the optimizer state.
    const SafetensorsFile opt =
        SafetensorsFile::open(tmp / "straight/checkpoints/step_00000020/optimizer.safetensors");
    const std::vector<float> bias = opt.read_f32("moe_bias", {2, 4});
    double moved = 0;
    for (float b : bias) moved += std::abs(b);
    EXPECT_GT(moved, 0.0);

    TrainOptions half = options_for(tmp, "resumed");
    half.stop_at_step = 10;
    train(moe_config(variant, 20), half);
    train(moe_config(variant, 20), options_for(tmp, "resumed"));
    for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
        EXPECT_EQ(read_file(tmp / "straight/checkpoints/step_00000020" / file),
                  read_file(tmp / "resumed/checkpoints/step_00000020" / file))
            << variant << " " << file;
    }
    const auto resumed = train_lines(tmp / "resumed/log.jsonl");
    ASSERT_EQ(resumed.size(), 20u);
    for (size_t i = 0; i < resumed.size(); ++i) {
        EXPECT_EQ(resumed[i]["loss"], lines[i]["loss"]) << "step " << i;
        EXPECT_EQ(resumed[i]["moe"], lines[i]["moe"]) << "step " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(Variants, MoeTraining,
                         ::testing::Values("olnn", "switch", "gshard", "condmlp", "moa"));

}  // namespace
}  // namespace greenmoe

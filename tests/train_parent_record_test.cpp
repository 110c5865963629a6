// parent.json of a run started with --init-from a `greenmoe simplify` output: the training
// run behind the pruned model, its CO2e, and the kept experts in the original numbering.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "greenmoe/energy/emissions_csv.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/train/trainer.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;

TEST(TrainParentRecord, ASimplifiedModelLeadsToItsTrainingRunAndOriginalExperts) {
    testing::TempDir tmp;
    TrainConfig c;
    c.model.n_layer = 1;
    c.model.n_head = 2;
    c.model.n_embd = 32;
    c.model.block_size = 16;
    c.batch_size = 2;
    c.seq_len = 16;
    c.max_steps = 2;
    c.val_every = 0;
    c.checkpoint_every = 0;
    c.dataset = "tinyshakespeare";
    auto options = [&](const std::string& run) {
        TrainOptions o;
        o.out_dir = tmp / run;
        o.data.data_dir = testing::shared_data();
        o.data.cache_dir = tmp / "cache";
        o.quiet = true;
        return o;
    };
    train(c, options("original"));
    const EmissionsTotals cost = EmissionsCsv(tmp / "original/emissions.csv").totals();
    // Two prunings as `simplify` records them (the weights themselves do not matter here):
    // the first keeps experts 1, 3, 5, 7 of 8; the second keeps its 0 and 2, i.e. 1 and 5.
    fs::create_directories(tmp / "pruned1");
    fs::create_directories(tmp / "pruned2");
    const fs::path weights = tmp / "original/checkpoints/step_00000002/model.safetensors";
    fs::copy_file(weights, tmp / "pruned2/model.safetensors");
    write_file_atomic(
        tmp / "pruned1/summary.json",
        nlohmann::json{{"model_absolute", (tmp / "original").string()},
                       {"criterion", "nmi"},
                       {"mode", "keep"},
                       {"layers", {{{"layer", 0}, {"n_experts", 8}, {"kept", {1, 3, 5, 7}}}}}}
            .dump());
    write_file_atomic(
        tmp / "pruned2/summary.json",
        nlohmann::json{{"model_absolute", (tmp / "pruned1").string()},
                       {"criterion", "nmi"},
                       {"mode", "keep"},
                       {"layers", {{{"layer", 0}, {"n_experts", 4}, {"kept", {0, 2}}}}}}
            .dump());

    TrainOptions healed = options("healed");
    healed.init_from = (tmp / "pruned2").string();
    train(c, healed);
    const auto parent = nlohmann::json::parse(read_file(tmp / "healed/parent.json"));
    EXPECT_EQ(parent["path"], fs::absolute(tmp / "pruned2").lexically_normal().string());
    EXPECT_EQ(parent["run"], (tmp / "original").string()) << parent.dump();
    ASSERT_TRUE(parent.contains("co2e_g")) << parent.dump();
    EXPECT_NEAR(parent["co2e_g"].get<double>(), cost.emissions_kg * 1e3, 1e-12);
    ASSERT_TRUE(parent.contains("simplified")) << parent.dump();
    EXPECT_EQ(parent["simplified"]["criterion"], "nmi");
    EXPECT_EQ(parent["simplified"]["kept_experts"]["0"], (std::vector<int>{1, 5}));
}

}  // namespace
}  // namespace greenmoe

// What train() does with a run folder it did not start: a resume with changed settings,
// weights from another run, an earlier run under --no-resume, a killed segment's energy,
// and configurations too large or wrong to start.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/energy/emissions_csv.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/train/checkpoint.h"
#include "greenmoe/train/trainer.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;

TrainConfig tiny_config(int64_t steps) {
    TrainConfig c;
    c.model.n_layer = 2;
    c.model.n_head = 2;
    c.model.n_embd = 32;
    c.model.block_size = 32;
    c.batch_size = 4;
    c.seq_len = 32;
    c.max_steps = steps;
    c.lr = 3e-3f;
    c.warmup_steps = 2;
    c.val_every = 0;
    c.checkpoint_every = 5;
    c.dataset = "tinyshakespeare";
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

std::vector<nlohmann::json> read_log(const fs::path& path, const std::string& type) {
    std::istringstream in(read_file(path));
    std::vector<nlohmann::json> out;
    std::string line;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line);
        if (j["type"] == type) out.push_back(j);
    }
    return out;
}

int rows(const fs::path& csv) {
    const std::string text = read_file(csv);
    return static_cast<int>(std::count(text.begin(), text.end(), '\n')) - 1;  // less the header
}

TEST(TrainRunFolder, ResumeWithChangedSettingsNamesEachKeyUnlessAllowed) {
    testing::TempDir tmp;
    TrainOptions o = options_for(tmp, "run");
    o.stop_at_step = 5;
    train(tiny_config(10), o);
    const std::string config_before = read_file(tmp / "run/config.json");

    TrainConfig changed = tiny_config(12);
    changed.lr = 1e-3f;
    const std::string msg =
        testing::error_message([&] { train(changed, options_for(tmp, "run")); });
    EXPECT_NE(msg.find("train.max_steps was 10, now 12"), std::string::npos) << msg;
    EXPECT_NE(msg.find("train.lr was 0.003, now 0.001"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--resume-with-changes train.lr train.max_steps"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('{'), std::string::npos) << msg;  // no JSON blobs
    EXPECT_EQ(read_file(tmp / "run/config.json"), config_before);

    // A model change can never be allowed.
    TrainConfig wider = tiny_config(10);
    wider.model.n_embd = 64;
    TrainOptions allow_model = options_for(tmp, "run");
    allow_model.resume_with_changes = {"model"};
    const std::string model_msg = testing::error_message([&] { train(wider, allow_model); });
    EXPECT_NE(model_msg.find("model.n_embd was 32, now 64"), std::string::npos) << model_msg;
    EXPECT_NE(model_msg.find("cannot change"), std::string::npos) << model_msg;

    TrainOptions allowed = options_for(tmp, "run");
    allowed.resume_with_changes = {"train.max_steps", "train.lr"};
    const TrainSummary s = train(changed, allowed);
    EXPECT_EQ(s.steps_done, 12);
    const auto config = nlohmann::json::parse(read_file(tmp / "run/config.json"));
    EXPECT_EQ(config["train"]["max_steps"], 12);
    const auto starts = read_log(tmp / "run/log.jsonl", "start");
    ASSERT_EQ(starts.size(), 2u);
    EXPECT_TRUE(starts[1]["resumed_with_changes"].contains("train.max_steps")) << starts[1].dump();

    TrainOptions unknown = options_for(tmp, "run");
    unknown.resume_with_changes = {"train.max_stepz"};
    EXPECT_NE(testing::error_message([&] { train(changed, unknown); }).find("train.max_stepz"),
              std::string::npos);
}

TEST(TrainRunFolder, InitFromTakesTheModelFromTheWeightsAndRecordsTheParent) {
    testing::TempDir tmp;
    train(tiny_config(3), options_for(tmp, "parent"));
    const EmissionsTotals parent_cost = EmissionsCsv(tmp / "parent/emissions.csv").totals();

    TrainConfig preset = tiny_config(2);
    preset.model.mlp = "switch";  // the preset says MoE; the weights are dense
    TrainOptions o = options_for(tmp, "child");
    o.init_from = (tmp / "parent").string();
    o.model_keys_set = {"n_layer"};
    preset.model.n_layer = 3;
    const std::string msg = testing::error_message([&] { train(preset, o); });
    EXPECT_NE(msg.find("--set model.n_layer=3 contradicts the initial weights"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("model.n_layer = 2"), std::string::npos) << msg;

    preset.model.n_layer = 2;  // agrees with the weights
    o.model_keys_set = {"n_layer", "w_load"};
    preset.model.w_load = 0.5f;  // a loss weight: the command line's value is taken
    train(preset, o);
    const auto config = nlohmann::json::parse(read_file(tmp / "child/config.json"));
    EXPECT_EQ(config["model"]["mlp"], "dense");
    EXPECT_EQ(config["model"]["w_load"], 0.5);
    const auto parent = nlohmann::json::parse(read_file(tmp / "child/parent.json"));
    EXPECT_EQ(parent["path"], fs::absolute(tmp / "parent").lexically_normal().string());
    ASSERT_TRUE(parent.contains("co2e_g")) << parent.dump();
    EXPECT_NEAR(parent["co2e_g"].get<double>(), parent_cost.emissions_kg * 1e3, 1e-12);
}

TEST(TrainRunFolder, NoResumeIntoAUsedFolderIsRefusedOrMovesTheOldRunAside) {
    testing::TempDir tmp;
    TrainOptions o = options_for(tmp, "run");
    o.stop_at_step = 5;
    train(tiny_config(10), o);

    TrainOptions again = options_for(tmp, "run");
    again.resume = false;
    const std::string msg = testing::error_message([&] { train(tiny_config(10), again); });
    EXPECT_NE(msg.find("holds an earlier run (checkpoints, log.jsonl"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--move-old-run"), std::string::npos) << msg;
    EXPECT_TRUE(fs::exists(tmp / "run/checkpoints/step_00000005"));

    again.move_old_run = true;
    again.stop_at_step = 2;
    const TrainSummary s = train(tiny_config(10), again);
    EXPECT_EQ(s.moved_old_run, fs::path(tmp / "run.old-1"));
    EXPECT_TRUE(fs::exists(tmp / "run.old-1/checkpoints/step_00000005"));
    EXPECT_FALSE(fs::exists(tmp / "run/checkpoints/step_00000005"));
    EXPECT_TRUE(fs::exists(tmp / "run/checkpoints/step_00000002"));
    EXPECT_EQ(read_log(tmp / "run/log.jsonl", "start").size(), 1u);
}

TEST(TrainRunFolder, AKilledSegmentsLoggedEnergyIsRecordedByTheNextRun) {
    testing::TempDir tmp;
    TrainOptions o = options_for(tmp, "run");
    o.stop_at_step = 5;
    train(tiny_config(10), o);
    ASSERT_EQ(rows(tmp / "run/emissions.csv"), 1);
    // What a segment killed by SIGKILL leaves: its start and logged steps, no "end" record
    // and no emissions row.
    {
        std::string log = read_file(tmp / "run/log.jsonl");
        log += R"({"type":"start","resumed_from_step":5}
{"type":"train","step":5,"loss":1.0,"energy_j":10.0,"segment":{"seconds":2.0,"joules":{"cpu":3.0,"ram":1.0},"joules_with_pue":4.0,"pue":1.0,"kwh":1.1111111111111112e-06,"co2e_g":0.5,"source":"estimated"}}
{"type":"train","step":6,"loss":1.0,"energy_j":20.0,"segment":{"seconds":4.0,"joules":{"cpu":6.0,"ram":2.0},"joules_with_pue":8.0,"pue":1.0,"kwh":2.2222222222222225e-06,"co2e_g":1.0,"source":"estimated"}}
)";
        write_file_atomic(tmp / "run/log.jsonl", log);
    }
    const TrainSummary s = train(tiny_config(10), options_for(tmp, "run"));
    EXPECT_EQ(rows(tmp / "run/emissions.csv"), 3);  // first, lost, this one
    const auto lost = read_log(tmp / "run/log.jsonl", "lost_segment");
    ASSERT_EQ(lost.size(), 1u);
    EXPECT_EQ(lost[0]["energy_j"], 8.0);
    EXPECT_EQ(lost[0]["last_logged_step"], 6);
    const EmissionsTotals t = EmissionsCsv(tmp / "run/emissions.csv").totals();
    EXPECT_GT(s.co2e_g, 1.0);  // the lost segment's gram counts in the run's total
    EXPECT_NEAR(t.emissions_kg * 1e3, s.co2e_g, 1e-2);
    // Recorded once: a later run finds nothing lost.
    TrainConfig more = tiny_config(12);
    TrainOptions allow = options_for(tmp, "run");
    allow.resume_with_changes = {"train.max_steps"};
    train(more, allow);
    EXPECT_EQ(rows(tmp / "run/emissions.csv"), 4);
}

TEST(TrainRunFolder, OversizedConfigurationsAreRefusedBeforeAllocating) {
    testing::TempDir tmp;
    TrainConfig huge = tiny_config(2);
    huge.model.n_layer = 1000000000;
    const std::string msg = testing::error_message([&] { train(huge, options_for(tmp, "a")); });
    EXPECT_NE(msg.find("needs"), std::string::npos) << msg;
    EXPECT_NE(msg.find("GiB, this machine has"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--no-memory-check"), std::string::npos) << msg;

    TrainConfig wide = tiny_config(2);
    wide.model.mlp = "switch";
    wide.model.expert_hidden = 1000000;
    wide.model.n_embd = 384;
    wide.model.n_head = 6;
    wide.model.n_layer = 6;
    EXPECT_NE(testing::error_message([&] {
                  train(wide, options_for(tmp, "b"));
              }).find("GiB, this machine has"),
              std::string::npos);
    EXPECT_GT(estimate_training_bytes(wide.model, 4, 32), 1e11);
}

TEST(TrainRunFolder, ConfigValuesAreChecked) {
    auto with = [](const std::string& section, const std::string& key, nlohmann::json v) {
        nlohmann::json j;
        j[section][key] = v;
        return testing::error_message([&] { train_config_from_json(j); });
    };
    EXPECT_NE(with("model", "n_layer", 2.5).find("model.n_layer: must be a whole number"),
              std::string::npos);
    EXPECT_NE(with("model", "n_layer", 1e30).find("model.n_layer: must be a whole number"),
              std::string::npos);
    EXPECT_NE(with("train", "seed", -1).find("train.seed"), std::string::npos);
    EXPECT_NE(with("train", "grad_clip", -1.0).find("train.grad_clip must be ≥ 0"),
              std::string::npos);
    nlohmann::json ok;
    ok["model"]["n_layer"] = 1e1;  // a whole number written as a float is fine
    EXPECT_EQ(train_config_from_json(ok).model.n_layer, 10);

    TrainConfig c = tiny_config(10);
    c.warmup_steps = 20;
    ASSERT_EQ(c.warnings().size(), 1u);
    EXPECT_NE(c.warnings()[0].find("train.warmup_steps (20) > train.max_steps (10)"),
              std::string::npos);
}

}  // namespace
}  // namespace greenmoe

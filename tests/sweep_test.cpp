// greenmoe sweep: a spec expanded into its grid and checked before anything runs; the grid
// trained as child processes, resumed after a kill without repeating finished runs, with the
// same results as a grid that ran straight through; failed runs recorded.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/run_lock.h"
#include "greenmoe/io/token_shard.h"
#include "greenmoe/sweep/sweep_runner.h"
#include "greenmoe/sweep/sweep_spec.h"
#include "greenmoe/sweep/sweep_state.h"
#include "test_support.h"

namespace greenmoe::sweep {
namespace {

namespace fs = std::filesystem;
using testing::run_command;

std::string bin() {
    return testing::greenmoe_binary().string();
}

// A small model on a token shard of the test's own: each run trains `steps` steps in
// about a second, validates every 100 steps and saves every 50.
void write_base(const testing::TempDir& tmp, int64_t steps = 300) {
    std::vector<uint16_t> tokens(40000);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint16_t>((i * 7) % 97);
    write_token_shard(tmp / "d.bin", tokens.data(), tokens.size());
    const nlohmann::json base = {
        {"model",
         {{"n_layer", 1}, {"n_head", 2}, {"n_embd", 32}, {"block_size", 32}, {"vocab_size", 128}}},
        {"train",
         {{"batch_size", 4},
          {"seq_len", 32},
          {"max_steps", steps},
          {"lr", 3e-3},
          {"warmup_steps", 5},
          {"log_every", 1}}},
        {"eval", {{"val_every", 100}, {"val_tokens", 512}, {"sample_every", 0}}},
        {"checkpoint", {{"every", 50}, {"keep", 2}}},
        {"data", {{"train", (tmp / "d.bin").string()}, {"val", (tmp / "d.bin").string()}}}};
    write_file_atomic(tmp / "base.json", base.dump(2));
}

fs::path write_spec(const testing::TempDir& tmp, const nlohmann::ordered_json& spec) {
    write_file_atomic(tmp / "spec.json", spec.dump(2));
    return tmp / "spec.json";
}

// 2 variants × 2 mechanisms × 2 seeds.
nlohmann::ordered_json tiny_grid() {
    return {{"base", "base.json"},
            {"axes", {{"model.mlp", {"dense", "switch"}}, {"mechanism", {"none", "load"}}}},
            {"seeds", {1, 2}}};
}

std::string spec_error(const testing::TempDir& tmp, const nlohmann::ordered_json& spec) {
    const fs::path file = write_spec(tmp, spec);
    return testing::error_message([&] { (void)read_sweep_plan(file); });
}

std::vector<nlohmann::json> records(const fs::path& run, const std::string& type) {
    std::istringstream in(read_file(run / "log.jsonl"));
    std::vector<nlohmann::json> out;
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.value("type", "") == type) out.push_back(j);
    }
    return out;
}

TEST(SweepSpec, ExpandsAxesTimesSeedsInOrderWithTheirSettings) {
    testing::TempDir tmp;
    write_base(tmp);
    nlohmann::ordered_json spec = tiny_grid();
    spec["set"] = {{"train.max_steps", 4}};
    const SweepPlan plan = read_sweep_plan(write_spec(tmp, spec));
    ASSERT_EQ(plan.runs.size(), 8u);
    EXPECT_EQ(plan.runs[0].name, "mlp-dense_mechanism-none_seed-1");
    EXPECT_EQ(plan.runs[1].name, "mlp-dense_mechanism-none_seed-2");
    EXPECT_EQ(plan.runs[2].name, "mlp-dense_mechanism-load_seed-1");
    EXPECT_EQ(plan.runs[7].name, "mlp-switch_mechanism-load_seed-2");
    EXPECT_EQ(plan.runs[7].setting, "mlp-switch_mechanism-load");
    EXPECT_EQ(plan.baseline, "mlp-dense_mechanism-none");
    // Common settings, the axis value, the mechanism (all five knobs, its own at 0.1), seed.
    const std::vector<std::string> want = {
        "train.max_steps=4", "model.mlp=\"switch\"", "model.w_load=0.1",   "model.w_importance=0",
        "model.lambda_z=0",  "model.w_penalty=0",    "model.bias_gamma=0", "train.seed=2"};
    EXPECT_EQ(plan.runs[7].overrides, want);
    ASSERT_EQ(plan.runs[7].values.size(), 2u);
    EXPECT_EQ(plan.runs[7].values[1], (std::pair<std::string, std::string>{"mechanism", "load"}));
    EXPECT_EQ(plan.base, fs::absolute(tmp / "base.json").lexically_normal());
}

TEST(SweepSpec, ExcludeBaselineSeedCountsAndLabelledValues) {
    testing::TempDir tmp;
    write_base(tmp);
    const nlohmann::ordered_json spec = {
        {"base", "base.json"},
        {"axes",
         {{"model.mlp", {"dense", "condmlp"}},
          {"mechanism", {"none", "bias"}},
          {"lr", {{{"label", "lr-lo"}, {"set", {{"train.lr", 1e-4}}}}}}}},
        {"exclude", {{{"model.mlp", "dense"}, {"mechanism", {"bias"}}}}},
        {"baseline", {{"model.mlp", "condmlp"}, {"mechanism", "none"}, {"lr", "lr-lo"}}},
        {"seeds", 3}};
    const SweepPlan plan = read_sweep_plan(write_spec(tmp, spec));
    ASSERT_EQ(plan.runs.size(), 9u);  // (2 × 2 − 1) settings × 3 seeds
    EXPECT_EQ(plan.seeds, (std::vector<uint64_t>{1337, 1338, 1339}));  // the base's seed on
    EXPECT_EQ(plan.baseline, "mlp-condmlp_mechanism-none_lr-lr-lo");
    for (const SweepRunState& r : plan.runs) {
        EXPECT_NE(r.setting, "mlp-dense_mechanism-bias_lr-lr-lo");
        EXPECT_NE(std::find(r.overrides.begin(), r.overrides.end(), "train.lr=0.0001"),
                  r.overrides.end());
    }
}

TEST(SweepSpec, BadSpecsAreRefusedNamingTheKey) {
    testing::TempDir tmp;
    write_base(tmp);
    nlohmann::ordered_json spec = tiny_grid();
    spec["sead"] = 1;
    EXPECT_NE(spec_error(tmp, spec).find("unknown key \"sead\""), std::string::npos);

    spec = tiny_grid();
    spec["axes"]["model.attn"] = nlohmann::ordered_json::array();
    EXPECT_NE(spec_error(tmp, spec).find("axes.model.attn: the axis is empty"), std::string::npos);

    // A value the preset rejects: named with its run and setting.
    spec = tiny_grid();
    spec["axes"]["model.mlp"] = {"dense", "swtich"};
    std::string e = spec_error(tmp, spec);
    EXPECT_NE(e.find("run mlp-swtich_mechanism-none_seed-1 is not a valid configuration"),
              std::string::npos)
        << e;
    EXPECT_NE(e.find("model.mlp"), std::string::npos) << e;

    spec = tiny_grid();
    spec["set"] = {{"model.n_expert", 8}};
    e = spec_error(tmp, spec);
    EXPECT_NE(e.find("n_expert"), std::string::npos) << e;

    spec = tiny_grid();
    spec["axes"]["mechanism"] = {"none", "laod"};
    EXPECT_NE(spec_error(tmp, spec).find("unknown mechanism \"laod\""), std::string::npos);

    spec = tiny_grid();
    spec["exclude"] = {{{"model.attn", "moa"}}};
    EXPECT_NE(spec_error(tmp, spec).find("exclude[0].model.attn: not an axis"), std::string::npos);

    spec = tiny_grid();
    spec["seeds"] = {1, 1};
    EXPECT_NE(spec_error(tmp, spec).find("seeds: 1 appears twice"), std::string::npos);

    spec = tiny_grid();
    spec["axes"]["data.train"] = {"a/b.bin"};
    EXPECT_NE(spec_error(tmp, spec).find("names run folders"), std::string::npos);

    spec = tiny_grid();
    spec["axes"]["train.seed"] = {1, 2};
    EXPECT_NE(spec_error(tmp, spec).find("seeds are given by \"seeds\""), std::string::npos);

    spec = tiny_grid();
    spec["base"] = "missing.json";
    EXPECT_NE(spec_error(tmp, spec).find("missing.json is not a file"), std::string::npos);

    // Through the command: one error line, exit 1, and nothing created.
    spec = tiny_grid();
    spec["axes"]["model.mlp"] = {"dense", "swtich"};
    const fs::path file = write_spec(tmp, spec);
    const auto r = run_command(bin() + " sweep --spec " + file.string() + " -o " +
                               (tmp / "grid").string() + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(r.output.rfind("greenmoe: error: ", 0), 0u) << r.output;
    EXPECT_FALSE(fs::exists(tmp / "grid"));
}

// Waits until no process holds the run folder's lock (a training stopping after a kill).
void wait_until_unlocked(const fs::path& run) {
    for (int i = 0; i < 600; ++i) {
        try {
            const RunLock lock(run);
            return;
        } catch (const Error&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    FAIL() << run << " stays locked";
}

TEST(SweepRun, KilledAndStartedAgainRecomputesNothingAndEqualsAStraightRun) {
    testing::TempDir tmp;
    write_base(tmp);
    const fs::path spec = write_spec(tmp, tiny_grid());
    const std::string sweep =
        bin() + " sweep --no-energy -q --jobs 1 --threads 1 --spec " + spec.string() + " -o ";

    const auto straight = run_command(sweep + (tmp / "straight").string() + " 2>&1");
    ASSERT_EQ(straight.exit_code, 0) << straight.output;

    // The second grid is killed (SIGKILL: no chance to clean up) while its third run trains.
    const fs::path grid = tmp / "killed";
    const auto started = run_command(sweep + grid.string() + " >/dev/null 2>&1 & echo $!");
    const long pid = std::stol(started.output);
    const fs::path third = grid / "mlp-dense_mechanism-load_seed-1";
    bool mid_run = false;
    for (int i = 0; i < 6000 && !mid_run; ++i) {
        if (fs::exists(third / "log.jsonl") && records(third, "train").size() >= 20 &&
            records(third, "done").empty()) {
            mid_run = true;
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    run_command("kill -9 " + std::to_string(pid));
    ASSERT_TRUE(mid_run) << "the third run never seen training";
    wait_until_unlocked(third);

    const SweepState killed = read_sweep_state(grid);
    std::vector<std::string> finished_logs;
    int finished = 0;
    for (const SweepRunState& r : killed.runs) {
        if (read_run_progress(grid / r.name).done) {
            ++finished;
            finished_logs.push_back(read_file(grid / r.name / "log.jsonl"));
        }
    }
    EXPECT_EQ(finished, 2);

    const auto again = run_command(sweep + grid.string() + " 2>&1");
    ASSERT_EQ(again.exit_code, 0) << again.output;

    const SweepState done = read_sweep_state(grid);
    ASSERT_EQ(done.runs.size(), 8u);
    for (size_t i = 0; i < done.runs.size(); ++i) {
        const SweepRunState& r = done.runs[i];
        SCOPED_TRACE(r.name);
        EXPECT_EQ(r.status, "done");
        // Finished runs untouched: not a line of their logs written again.
        if (i < finished_logs.size()) {
            EXPECT_EQ(read_file(grid / r.name / "log.jsonl"), finished_logs[i]);
        }
        // Every run ends where the straight grid's did, bit for bit.
        const auto a = records(tmp / "straight" / r.name, "done");
        const auto b = records(grid / r.name, "done");
        ASSERT_EQ(a.size(), 1u);
        ASSERT_EQ(b.size(), 1u);
        EXPECT_EQ(a[0]["train_loss"], b[0]["train_loss"]);
        EXPECT_EQ(a[0]["val_loss"], b[0]["val_loss"]);
        EXPECT_EQ(
            read_file(tmp / "straight" / r.name / "checkpoints/step_00000300/model.safetensors"),
            read_file(grid / r.name / "checkpoints/step_00000300/model.safetensors"));
    }
    // The killed run resumed from its checkpoint: one more start record than the others.
    EXPECT_EQ(records(third, "start").size(), 2u);

    // The summary of the whole grid, from the command.
    const auto summary = run_command(bin() + " sweep --summary " + grid.string() + " 2>&1");
    EXPECT_EQ(summary.exit_code, 0) << summary.output;
    EXPECT_NE(summary.output.find("mlp-switch_mechanism-load"), std::string::npos);
    EXPECT_TRUE(fs::exists(grid / "summary.csv"));
}

TEST(SweepRun, AFailedRunIsRecordedAndTheOthersGoOn) {
    testing::TempDir tmp;
    write_base(tmp, 20);
    // The second data value passes the spec check (a pattern) but matches no file.
    const nlohmann::ordered_json spec = {
        {"base", "base.json"},
        {"axes",
         {{"data", nlohmann::ordered_json::array(
                       {{{"label", "good"}, {"set", {{"data.train", (tmp / "d.bin").string()}}}},
                        {{"label", "missing"},
                         {"set", {{"data.train", (tmp / "none*.bin").string()}}}}})}}}};
    const fs::path file = write_spec(tmp, spec);
    const fs::path grid = tmp / "grid";
    const auto r = run_command(bin() + " sweep --no-energy -q --threads 1 --spec " + file.string() +
                               " -o " + grid.string() + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("1 of 2 runs failed"), std::string::npos) << r.output;
    const SweepState state = read_sweep_state(grid);
    ASSERT_EQ(state.runs.size(), 2u);
    EXPECT_EQ(state.runs[0].status, "done");
    EXPECT_EQ(state.runs[1].status, "failed");
    EXPECT_NE(state.runs[1].error.find("none*.bin"), std::string::npos) << state.runs[1].error;
}

TEST(SweepRun, AnotherSpecIntoTheSameFolderIsRefused) {
    testing::TempDir tmp;
    write_base(tmp, 4);
    nlohmann::ordered_json spec = {{"base", "base.json"}, {"axes", {{"model.mlp", {"dense"}}}}};
    const std::string sweep = bin() + " sweep --no-energy -q --threads 1 --spec ";
    const fs::path grid = tmp / "grid";
    ASSERT_EQ(
        run_command(sweep + write_spec(tmp, spec).string() + " -o " + grid.string()).exit_code, 0);
    spec["set"] = {{"train.lr", 1e-2}};
    const auto r =
        run_command(sweep + write_spec(tmp, spec).string() + " -o " + grid.string() + " 2>&1");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("was trained with other settings"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace greenmoe::sweep

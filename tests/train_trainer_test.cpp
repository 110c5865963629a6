// End-to-end training on tinyshakespeare: loss falls, runs are reproducible, and
// 10 steps + save + resume + 10 steps equals 20 steps bit for bit.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/run_lock.h"
#include "greenmoe/train/checkpoint.h"
#include "greenmoe/train/trainer.h"
#include "test_support.h"

namespace greenmoe {
namespace {

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
    c.warmup_steps = 5;
    c.val_every = 10;
    c.val_tokens = 1024;
    c.sample_every = 0;
    c.checkpoint_every = 10;
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

std::vector<nlohmann::json> read_log(const std::filesystem::path& path, const std::string& type) {
    std::istringstream in(read_file(path));
    std::vector<nlohmann::json> out;
    std::string line;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line);
        if (j["type"] == type) out.push_back(j);
    }
    return out;
}

TEST(Trainer, LossFallsOnTinyShakespeare) {
    testing::TempDir tmp;
    const TrainSummary s = train(tiny_config(40), options_for(tmp, "run"));
    EXPECT_EQ(s.steps_done, 40);
    const auto train_log = read_log(tmp / "run/log.jsonl", "train");
    ASSERT_EQ(train_log.size(), 40u);
    double first = 0, last = 0;
    for (int i = 0; i < 5; ++i) {
        first += train_log[i]["loss"].get<double>() / 5;
        last += train_log[35 + i]["loss"].get<double>() / 5;
    }
    EXPECT_NEAR(train_log[0]["loss"].get<double>(), std::log(50257.0), 0.3);
    EXPECT_LT(last, first - 2.0) << "first " << first << " last " << last;
    const auto val_log = read_log(tmp / "run/log.jsonl", "val");
    ASSERT_GE(val_log.size(), 2u);
    EXPECT_LT(val_log.back()["val_loss"].get<double>(),
              val_log.front()["val_loss"].get<double>() - 2.0);
    EXPECT_EQ(read_log(tmp / "run/log.jsonl", "done").size(), 1u);
}

// A complete run started again (as a sweep does after being killed during the final
// evaluations) keeps one "done" record with the same final figures.
TEST(Trainer, ACompleteRunStartedAgainKeepsItsDoneRecord) {
    testing::TempDir tmp;
    const TrainSummary first = train(tiny_config(6), options_for(tmp, "run"));
    const auto before = read_log(tmp / "run/log.jsonl", "done");
    ASSERT_EQ(before.size(), 1u);
    const TrainSummary again = train(tiny_config(6), options_for(tmp, "run"));
    EXPECT_EQ(again.steps_done, 6);
    const auto after = read_log(tmp / "run/log.jsonl", "done");
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0]["val_loss"], before[0]["val_loss"]);
    EXPECT_EQ(after[0]["train_loss"], before[0]["train_loss"]);
    EXPECT_EQ(read_log(tmp / "run/log.jsonl", "val").back()["step"], 6);
    EXPECT_EQ(first.final_val_loss, again.final_val_loss);
}

TEST(Trainer, HellaSwagEveryNStepsIsLogged) {
    testing::TempDir tmp;
    TrainConfig c = tiny_config(4);
    c.val_every = 0;
    c.hellaswag_every = 2;
    c.hellaswag_limit = 3;
    c.hellaswag_data =
        (testing::shared_data() / "hellaswag" / "hellaswag_val_full.txt.bz2").string();
    TrainOptions o = options_for(tmp, "run");
    o.data.tokenizer_dir = testing::tokenizer_dir();
    const TrainSummary s = train(c, o);
    const auto evals = read_log(tmp / "run/log.jsonl", "eval");
    ASSERT_EQ(evals.size(), 2u);  // step 2 and the end (step 4)
    EXPECT_EQ(evals[0]["step"].get<int>(), 2);
    EXPECT_EQ(evals[1]["step"].get<int>(), 4);
    for (const auto& e : evals) {
        EXPECT_EQ(e["task"], "hellaswag");
        EXPECT_EQ(e["items"].get<int>(), 3);
        const double acc = e["acc_norm"].get<double>();
        EXPECT_TRUE(acc == 0.0 || acc == 1.0 / 3 || acc == 2.0 / 3 || acc == 1.0) << acc;
        EXPECT_TRUE(e.contains("harness_acc_norm"));
    }
    EXPECT_DOUBLE_EQ(s.final_hellaswag_acc_norm, evals[1]["acc_norm"].get<double>());
    EXPECT_DOUBLE_EQ(read_log(tmp / "run/log.jsonl", "done")[0]["hellaswag_acc_norm"].get<double>(),
                     s.final_hellaswag_acc_norm);
}

TEST(Trainer, SameSeedGivesTheSameRun) {
    testing::TempDir tmp;
    train(tiny_config(6), options_for(tmp, "a"));
    train(tiny_config(6), options_for(tmp, "b"));
    EXPECT_EQ(read_file(tmp / "a/checkpoints/step_00000006/model.safetensors"),
              read_file(tmp / "b/checkpoints/step_00000006/model.safetensors"));
    const auto a = read_log(tmp / "a/log.jsonl", "train");
    const auto b = read_log(tmp / "b/log.jsonl", "train");
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["loss"], b[i]["loss"]);
    // A different seed is a different run.
    TrainConfig other = tiny_config(6);
    other.seed = 99;
    train(other, options_for(tmp, "c"));
    EXPECT_NE(read_file(tmp / "a/checkpoints/step_00000006/model.safetensors"),
              read_file(tmp / "c/checkpoints/step_00000006/model.safetensors"));
}

TEST(Trainer, TenStepsSaveResumeTenStepsEqualsTwentySteps) {
    testing::TempDir tmp;
    train(tiny_config(20), options_for(tmp, "straight"));

    TrainOptions first = options_for(tmp, "resumed");
    first.stop_at_step = 10;
    const TrainSummary half = train(tiny_config(20), first);
    EXPECT_EQ(half.steps_done, 10);
    ASSERT_TRUE(latest_checkpoint(tmp / "resumed").has_value());
    const std::string first_segment = read_file(tmp / "resumed/emissions.csv");
    const TrainSummary rest = train(tiny_config(20), options_for(tmp, "resumed"));
    EXPECT_EQ(rest.steps_done, 20);

    for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
        EXPECT_EQ(read_file(tmp / "straight/checkpoints/step_00000020" / file),
                  read_file(tmp / "resumed/checkpoints/step_00000020" / file))
            << file;
    }
    const auto a = read_log(tmp / "straight/log.jsonl", "train");
    const auto b = read_log(tmp / "resumed/log.jsonl", "train");
    ASSERT_EQ(a.size(), 20u);
    ASSERT_EQ(b.size(), 20u);  // no step lost or repeated
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i]["step"], b[i]["step"]);
        EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << "step " << i;
    }
    const auto va = read_log(tmp / "straight/log.jsonl", "val");
    const auto vb = read_log(tmp / "resumed/log.jsonl", "val");
    ASSERT_EQ(va.size(), vb.size());
    for (size_t i = 0; i < va.size(); ++i) EXPECT_EQ(va[i]["val_loss"], vb[i]["val_loss"]);

    // Energy: one emissions.csv row per segment, the first kept as it was; the logged
    // totals carry on across the resume.
    auto lines = [](const std::string& text) { return std::count(text.begin(), text.end(), '\n'); };
    const std::string both_segments = read_file(tmp / "resumed/emissions.csv");
    EXPECT_EQ(lines(read_file(tmp / "straight/emissions.csv")), 2);  // header + 1 row
    EXPECT_EQ(lines(first_segment), 2);
    EXPECT_EQ(lines(both_segments), 3);
    EXPECT_EQ(both_segments.rfind(first_segment, 0), 0u);
    EXPECT_EQ(both_segments.rfind("timestamp,project_name,run_id", 0), 0u);
    double previous = 0.0;
    for (const auto& record : b) {
        ASSERT_TRUE(record.contains("energy_j")) << record.dump();
        const double joules = record["energy_j"].get<double>();
        EXPECT_GE(joules, previous) << "step " << record["step"];
        EXPECT_GT(record["co2e_g"].get<double>(), 0.0);
        EXPECT_NEAR(record["j_per_token"].get<double>(), joules / record["tokens"].get<double>(),
                    1e-9 * joules);
        previous = joules;
    }
    EXPECT_GT(previous, b[9]["energy_j"].get<double>());
    const auto done = read_log(tmp / "resumed/log.jsonl", "done");
    ASSERT_EQ(done.size(), 1u);
    EXPECT_NEAR(done[0]["energy_j"].get<double>(), rest.energy_joules, 1e-9 * rest.energy_joules);
    EXPECT_GE(rest.energy_joules, previous);
}

TEST(Trainer, ARunFolderInUseIsRefusedWithTheHoldersPid) {
    testing::TempDir tmp;
    std::filesystem::create_directories(tmp / "run");
    const std::string msg = [&] {
        RunLock other(tmp / "run");  // as another greenmoe train would hold it
        return testing::error_message([&] { train(tiny_config(2), options_for(tmp, "run")); });
    }();
    EXPECT_NE(msg.find("(pid " + std::to_string(getpid()) + ")"), std::string::npos) << msg;
    EXPECT_FALSE(std::filesystem::exists(tmp / "run/log.jsonl"));
    EXPECT_FALSE(std::filesystem::exists(tmp / "run/config.json"));
}

TEST(Trainer, UnfinishedCheckpointSavesAreRemovedAtStart) {
    testing::TempDir tmp;
    // What a run killed while saving leaves: a temporary folder that was never renamed.
    const auto stale = tmp / "run/checkpoints/.tmp_step_00000010_4242";
    std::filesystem::create_directories(stale);
    testing::write_text_file(stale / "model.safetensors", std::string(1000, 'w'));
    TrainOptions o = options_for(tmp, "run");
    o.stop_at_step = 2;
    train(tiny_config(4), o);
    EXPECT_FALSE(std::filesystem::exists(stale));
    EXPECT_TRUE(std::filesystem::exists(tmp / "run/checkpoints/step_00000002"));
}

TEST(Trainer, ResumeWithLogLinesPastTheCheckpointDropsThem) {
    testing::TempDir tmp;
    TrainOptions o = options_for(tmp, "run");
    o.stop_at_step = 10;
    train(tiny_config(20), o);
    // A killed run may have logged steps after its last checkpoint, and a torn line.
    {
        std::string log = read_file(tmp / "run/log.jsonl");
        log += "{\"type\":\"train\",\"step\":11,\"loss\":1.0}\n{\"type\":\"tra";
        write_file_atomic(tmp / "run/log.jsonl", log);
    }
    train(tiny_config(20), options_for(tmp, "run"));
    const auto steps = read_log(tmp / "run/log.jsonl", "train");
    ASSERT_EQ(steps.size(), 20u);
    // Steps 1…N, each once.
    for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i]["step"].get<size_t>(), i + 1);
}

TEST(Trainer, ResumeRefusesAChangedModel) {
    testing::TempDir tmp;
    TrainOptions o = options_for(tmp, "run");
    o.stop_at_step = 10;
    train(tiny_config(20), o);
    TrainConfig changed = tiny_config(20);
    changed.model.n_embd = 64;
    try {
        train(changed, options_for(tmp, "run"));
        FAIL() << "resume with another model accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model"), std::string::npos) << e.what();
    }
}

TEST(Trainer, GradientAccumulationMatchesOneBigBatch) {
    // 2 micro-batches of B=2 vs 1 batch of B=4 over the same 4 sequences: same step up
    // to float summation order.
    testing::TempDir tmp;
    TrainConfig big = tiny_config(3);
    big.val_every = 0;
    TrainConfig accum = big;
    accum.batch_size = 2;
    accum.total_batch_tokens = 4 * 32;
    // The loaders read consecutive windows, so 2×(2 windows) = the same 4 windows.
    train(big, options_for(tmp, "big"));
    train(accum, options_for(tmp, "accum"));
    const auto a = read_log(tmp / "big/log.jsonl", "train");
    const auto b = read_log(tmp / "accum/log.jsonl", "train");
    ASSERT_EQ(a.size(), 3u);
    ASSERT_EQ(b.size(), 3u);
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_NEAR(a[i]["loss"].get<double>(), b[i]["loss"].get<double>(), 1e-4);
        EXPECT_NEAR(a[i]["grad_norm"].get<double>(), b[i]["grad_norm"].get<double>(), 1e-4);
    }
}

}  // namespace
}  // namespace greenmoe

// `prune-study`: a pruned model from every criterion loads, runs and scores on a task, and a
// study stopped and restarted redoes nothing that finished.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/token_shard.h"
#include "greenmoe/moeits/prune_study.h"
#include "test_support.h"

namespace greenmoe::moeits {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using greenmoe::testing::TempDir;

PruneStudyOptions study(const TempDir& tmp, const fs::path& model) {
    // The calibration tokens of the criteria reference fixture, for this model.
    const Json f = Json::parse(
        read_file(fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/pruning/qwen2_moe.json"));
    std::vector<uint16_t> ids;
    for (const auto& id : f.at("ids")) ids.push_back(id.get<uint16_t>());
    write_token_shard(tmp / "calibration.bin", ids.data(), ids.size());
    PruneStudyOptions o;
    o.model = model;
    o.out = tmp / "study";
    o.criteria = {Criterion::Nmi, Criterion::Random, Criterion::RouterNorm, Criterion::Frequency,
                  Criterion::Ean, Criterion::Reap,   Criterion::Naee};
    o.reduce_percents = {40};
    o.tasks = {"arc_easy"};
    o.task_options.data_dir = fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/lm-eval";
    o.task_options.limit = 4;
    o.calibration_data = (tmp / "calibration.bin").string();
    o.calibration_tokens = static_cast<int64_t>(ids.size());
    o.calibration_sequence_length = 12;
    // The inference benchmark on a short protocol (the model's window is small).
    o.bench_prompt_tokens = 8;
    o.bench_new_tokens = 4;
    o.bench_warmup = 0;
    o.bench_repeats = 1;
    o.show_progress = false;
    o.log = [](const std::string&) {};
    return o;
}

std::map<std::string, fs::file_time_type> result_times(const fs::path& dir) {
    std::map<std::string, fs::file_time_type> times;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (e.path().filename() == "result.json" || e.path().filename() == "summary.json") {
            times[e.path().string()] = fs::last_write_time(e.path());
        }
    }
    return times;
}

TEST(PruneStudy, EveryCriterionScoresAndAStoppedStudyResumes) {
    const TempDir tmp;
    const fs::path model = greenmoe::testing::hf_model_with_tokenizer(tmp.path(), "qwen2_moe");
    // ARC prompts outgrow the fixture's 16 positions; its plain RoPE runs at any position.
    Json config = Json::parse(read_file(model / "config.json"));
    config["max_position_embeddings"] = 512;
    write_file_atomic(model / "config.json", config.dump());
    PruneStudyOptions o = study(tmp, model);
    const size_t cells = 1 + o.criteria.size();  // the unpruned model, then each criterion

    o.stop_after_cells = 3;
    const PruneStudyResult first = run_prune_study(o);
    EXPECT_TRUE(first.stopped);
    EXPECT_EQ(first.computed, 3);
    const auto finished = result_times(o.out);
    EXPECT_EQ(finished.size(), 3u + 2u);  // 3 result.json, 2 pruned models' summary.json

    o.stop_after_cells = 0;
    const PruneStudyResult second = run_prune_study(o);
    EXPECT_FALSE(second.stopped);
    EXPECT_EQ(second.reused, 3);
    EXPECT_EQ(second.computed, static_cast<int>(cells) - 3);
    ASSERT_EQ(second.cells.size(), cells);
    for (const auto& [path, time] : finished) {
        EXPECT_EQ(fs::last_write_time(path), time) << path << " was redone";
    }
    for (const PruneStudyCell& c : second.cells) {
        // Every pruned model loaded, ran and scored: an accuracy of 4 documents.
        ASSERT_TRUE(c.scores.at("arc_easy").is_number()) << c.criterion;
        const double acc = c.scores.at("arc_easy").get<double>();
        EXPECT_GE(acc, 0.0) << c.criterion;
        EXPECT_LE(acc, 1.0) << c.criterion;
        // ... and was benchmarked.
        ASSERT_TRUE(c.benchmark.is_object()) << c.criterion;
        EXPECT_GT(c.benchmark.at("decode_tokens_per_s").get<double>(), 0.0) << c.criterion;
        EXPECT_EQ(c.benchmark.at("new_tokens"), 4) << c.criterion;
        if (c.criterion != "none") {
            EXPECT_GT(c.expert_reduction_percent, 0.0) << c.criterion;
        }
    }

    const PruneStudyResult third = run_prune_study(o);
    EXPECT_EQ(third.computed, 0);
    EXPECT_EQ(third.reused, static_cast<int>(cells));
    const std::string table = read_file(third.table);
    for (const char* name :
         {"none", "moeits", "random", "router-norm", "frequency", "ean", "reap", "naee"}) {
        EXPECT_NE(table.find(fmt::format("\n{},", name)), std::string::npos) << name;
    }
    const std::string svg = read_file(third.plot);
    EXPECT_NE(svg.find("accuracy-vs-pruning"), std::string::npos);
}

TEST(PruneStudy, RefusesDataCriteriaWithoutCalibrationData) {
    const TempDir tmp;
    PruneStudyOptions o = study(tmp, tmp / "model");
    o.calibration_data.clear();
    const std::string msg = greenmoe::testing::error_message([&] { run_prune_study(o); });
    EXPECT_NE(msg.find("--calibration-data"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(o.out));
}

}  // namespace
}  // namespace greenmoe::moeits

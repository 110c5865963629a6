// Benchmark tasks end to end on a tiny GPT-2, a tiny OLMoE and a greenmoe Switch MoE against an
// independent float64 scorer that scores the requests lm-evaluation-harness built (tools/fixtures/
// make_task_scoring_reference.py): log-likelihoods, acc, acc_norm, their standard errors,
// LAMBADA's perplexity and MMLU's group averages, 0-shot and few-shot.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <omp.h>

#include "greenmoe/eval/language_model.h"
#include "greenmoe/eval/task_scoring.h"
#include "greenmoe/eval/tasks/tasks.h"
#include "greenmoe/io/atomic_file.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;

fs::path fixtures() {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/lm-eval";
}

void expect_metric(const MetricValue& got, const nlohmann::json& want, const std::string& what) {
    EXPECT_NEAR(got.value, want.at("value").get<double>(), 1e-9) << what;
    if (want.at("stderr").is_null()) {
        EXPECT_TRUE(std::isnan(got.stderr_)) << what;
    } else {
        EXPECT_NEAR(got.stderr_, want.at("stderr").get<double>(), 1e-9) << what;
    }
}

// The reference's model: the tiny GPT-2 with GPT-2's BPE, or a Hugging Face fixture with the
// reference's tokenizer and its window widened as the reference ran it.
std::unique_ptr<LanguageModel> reference_model(const nlohmann::json& reference,
                                               const testing::TempDir& tmp) {
    const fs::path root = GREENMOE_SOURCE_DIR;
    const fs::path model = root / reference.at("model").get<std::string>();
    if (!reference.contains("tokenizer")) {
        return open_language_model(model, testing::tokenizer_dir().string());
    }
    const fs::path dir = tmp / "model";
    fs::copy(model, dir);
    fs::copy(root / reference["tokenizer"].get<std::string>(), dir);
    auto config = nlohmann::json::parse(read_file(dir / "config.json"));
    config["max_position_embeddings"] = reference.at("max_length");
    testing::write_text_file(dir / "config.json", config.dump());
    return open_language_model(dir);
}

// The tiny GPT-2 (F16 weights), the tiny OLMoE (F32) and a greenmoe nano-shaped Switch MoE
// checkpoint (F32), each against its float64 scorer.
class TaskScoringReference : public ::testing::TestWithParam<const char*> {};

TEST_P(TaskScoringReference, EveryTaskRunMatchesTheFloat64Scorer) {
    const auto reference = nlohmann::json::parse(read_file(fixtures() / GetParam()));
    testing::TempDir tmp;
    const auto model = reference_model(reference, tmp);
    ASSERT_EQ(model->max_length(), reference.at("max_length").get<int>());
    TaskScoringOptions quiet;
    quiet.progress = false;
    for (const auto& [task, runs] : reference.at("tasks").items()) {
        for (const auto& run : runs) {
            const std::string what = task + " " + std::to_string(run["num_fewshot"].get<int>()) +
                                     "-shot seed " + std::to_string(run["seed"].get<int>());
            tasks::TaskOptions options;
            options.num_fewshot = run["num_fewshot"];
            options.seed = run["seed"];
            options.limit = run.value("limit", int64_t{0});  // the harness's --limit
            options.data_dir = fixtures();
            std::vector<tasks::Instance> docs;
            if (task == "mmlu") {
                // The fixture holds a few subjects; the subjects in the reference's order.
                std::vector<std::string> subjects;
                for (const auto& d : run.at("docs")) {
                    const std::string g = d["group"];
                    if (subjects.empty() || subjects.back() != g) subjects.push_back(g);
                }
                for (const std::string& subject : subjects) {
                    const auto part = tasks::build_task("mmlu_" + subject, options);
                    docs.insert(docs.end(), part.begin(), part.end());
                }
            } else {
                docs = tasks::build_task(task, options);
            }
            const TaskScores got =
                score_task(*model, task, docs, tasks::task_info(task).kind, quiet);
            const auto& want_docs = run.at("docs");
            ASSERT_EQ(got.items.size(), want_docs.size()) << what;
            for (size_t i = 0; i < want_docs.size(); ++i) {
                const auto& w = want_docs[i];
                const ScoredItem& s = got.items[i];
                ASSERT_EQ(s.loglik.size(), w["loglik"].size()) << what << " doc " << i;
                for (size_t c = 0; c < s.loglik.size(); ++c) {
                    // float32 arithmetic against float64, sums of up to ~100 tokens: 1e-5
                    // at most was seen on the three models (a 10x margin for other BLAS).
                    EXPECT_NEAR(s.loglik[c], w["loglik"][c].get<double>(), 1e-4)
                        << what << " doc " << i << " choice " << c;
                    EXPECT_EQ(bool(s.greedy[c]), w["greedy"][c].get<bool>())
                        << what << " doc " << i << " choice " << c;
                }
                EXPECT_EQ(s.acc, w["acc"].get<double>()) << what << " doc " << i;
                if (w.contains("acc_norm")) {
                    EXPECT_EQ(s.acc_norm, w["acc_norm"].get<double>()) << what << " doc " << i;
                }
            }
            for (const auto& [metric, want] : run.at("metrics").items()) {
                if (metric == "perplexity") {
                    EXPECT_NEAR(got.metrics.at(metric).value / want["value"].get<double>(), 1.0,
                                1e-4)
                        << what;
                    continue;
                }
                if (!got.groups.empty()) {
                    // The group's value is the size-weighted mean; its error the pooled one.
                    const auto j = harness_results({got}, options.num_fewshot);
                    const auto& entry = j["results"][task];
                    EXPECT_NEAR(entry[metric + ",none"].get<double>(), want["value"], 1e-9) << what;
                    EXPECT_NEAR(entry[metric + "_stderr,none"].get<double>(), want["stderr"], 1e-9)
                        << what;
                    EXPECT_NEAR(entry[metric + "_macro,none"].get<double>(), want["macro"], 1e-9)
                        << what;
                    continue;
                }
                expect_metric(got.metrics.at(metric), want, what + " " + metric);
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Models, TaskScoringReference,
                         ::testing::Values("scoring_reference.json", "scoring_reference_olmoe.json",
                                           "scoring_reference_nano_switch.json"));

// `greenmoe eval --task a,b --num-fewshot N`: the harness's results file, one sample line
// per document, only the metrics each task lists, and command-line errors with status 2.
TEST(BenchmarkTasksCli, ResultsFileSamplesAndErrors) {
    testing::TempDir tmp;
    const std::string base =
        testing::greenmoe_binary().string() + " eval --model " +
        (fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/hellaswag/tiny_gpt2").string() +
        " --tokenizer " + testing::tokenizer_dir().string() + " --data-dir " + fixtures().string() +
        " --no-energy -q";
    const auto r = testing::run_command(base + " --task arc_easy,winogrande --num-fewshot 3" +
                                        " --json " + (tmp / "results.json").string() +
                                        " --log-samples " + (tmp / "samples.jsonl").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("arc_easy"), std::string::npos) << r.output;
    const auto j = nlohmann::json::parse(read_file(tmp / "results.json"));
    EXPECT_EQ(j["n-shot"]["arc_easy"], 3);
    EXPECT_TRUE(j["results"]["arc_easy"].contains("acc_norm,none"));
    EXPECT_TRUE(j["results"]["winogrande"].contains("acc,none"));
    EXPECT_FALSE(j["results"]["winogrande"].contains("acc_norm,none"));  // not in its YAML
    EXPECT_EQ(j["configs"]["winogrande"]["num_fewshot"], 3);
    EXPECT_EQ(j["config"]["fewshot_seed"], 1234);
    const std::string samples = read_file(tmp / "samples.jsonl");
    EXPECT_EQ(std::count(samples.begin(), samples.end(), '\n'), 12);  // 6 documents each

    const auto unknown = testing::run_command(base + " --task arc_easy,sciq");
    EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
    EXPECT_NE(unknown.output.find("sciq"), std::string::npos) << unknown.output;
    const auto too_many = testing::run_command(base + " --task boolq --num-fewshot 500");
    EXPECT_EQ(too_many.exit_code, 2) << too_many.output;
    EXPECT_NE(too_many.output.find("500"), std::string::npos) << too_many.output;
}

// A greenmoe checkpoint scored from the hub's Parquet copies: the results the release files give.
TEST(BenchmarkTasksCli, HubParquetCopiesScoreAsTheReleases) {
    testing::TempDir tmp;
    const fs::path source = GREENMOE_SOURCE_DIR;
    const std::string base = testing::greenmoe_binary().string() + " eval --checkpoint " +
                             (source / "tests/fixtures/lm-eval/nano_switch").string() +
                             " --tokenizer " + testing::tokenizer_dir().string() +
                             " --no-energy -q --task piqa,rte,mmlu_college_physics --num-fewshot 2";
    nlohmann::json results[2];
    const fs::path dirs[2] = {fixtures(), source / "tests/fixtures/lm-eval-hub"};
    for (int i = 0; i < 2; ++i) {
        const fs::path out = tmp / ("results" + std::to_string(i) + ".json");
        const auto r = testing::run_command(base + " --data-dir " + dirs[i].string() + " --json " +
                                            out.string());
        ASSERT_EQ(r.exit_code, 0) << r.output;
        results[i] = nlohmann::json::parse(read_file(out))["results"];
    }
    for (const std::string task : {"piqa", "rte", "mmlu_college_physics"}) {
        ASSERT_TRUE(results[0].contains(task)) << results[0].dump();
        EXPECT_EQ(results[0][task]["acc,none"], results[1][task]["acc,none"]) << task;
        EXPECT_EQ(results[0][task]["acc_stderr,none"], results[1][task]["acc_stderr,none"]) << task;
    }
}

// Scores do not depend on the thread count or on how many documents are scored together: the
// same predictions, and log-likelihoods equal to float32 rounding (BLAS blocks a product
// differently for other shapes and thread counts). A greenmoe GPT, a greenmoe Switch MoE (no
// capacity limit at inference, so no token's route depends on its batch) and Hugging Face MoEs.
class SameScores : public ::testing::TestWithParam<const char*> {};

// The fixture's 16 positions hold no ARC continuation in its tiny tokenizer: 96 do. The runs
// are compared with each other only.
fs::path with_window(const fs::path& dir) {
    auto config = nlohmann::json::parse(testing::read_text_file(dir / "config.json"));
    config["max_position_embeddings"] = 96;
    testing::write_text_file(dir / "config.json", config.dump());
    return dir;
}

TEST_P(SameScores, WhateverTheBatchAndThreads) {
    const std::string which = GetParam();
    testing::TempDir tmp;
    const fs::path source = GREENMOE_SOURCE_DIR;
    const auto model =
        which == "gpt2" ? open_language_model(source / "tests/fixtures/hellaswag/tiny_gpt2",
                                              testing::tokenizer_dir().string())
        : which == "nano_switch"
            ? open_language_model(source / "tests/fixtures/lm-eval/nano_switch",
                                  testing::tokenizer_dir().string())
            : open_language_model(with_window(testing::hf_model_with_tokenizer(tmp.path(), which)));
    tasks::TaskOptions options;
    options.num_fewshot = 3;
    options.data_dir = fixtures();
    const auto docs = tasks::build_task("arc_easy", options);
    const int before = omp_get_max_threads();
    std::vector<TaskScores> runs;
    for (const int threads : {1, 2}) {
        for (const int64_t batch_tokens : {0, 200, 100000}) {
            TaskScoringOptions o;
            o.progress = false;
            o.batch_tokens = batch_tokens;
            omp_set_num_threads(threads);
            runs.push_back(
                score_task(*model, "arc_easy", docs, tasks::OutputKind::MultipleChoice, o));
        }
    }
    omp_set_num_threads(before);
    const TaskScores& first = runs.front();
    for (size_t r = 1; r < runs.size(); ++r) {
        for (size_t i = 0; i < docs.size(); ++i) {
            EXPECT_EQ(first.items[i].pred, runs[r].items[i].pred) << "run " << r << " doc " << i;
            EXPECT_EQ(first.items[i].pred_norm, runs[r].items[i].pred_norm)
                << "run " << r << " doc " << i;
            for (size_t c = 0; c < first.items[i].loglik.size(); ++c) {
                EXPECT_NEAR(first.items[i].loglik[c], runs[r].items[i].loglik[c],
                            1e-5 * (1 + std::fabs(first.items[i].loglik[c])))
                    << "run " << r << " doc " << i << " choice " << c;
            }
        }
        EXPECT_EQ(first.metrics.at("acc").value, runs[r].metrics.at("acc").value);
    }
}

INSTANTIATE_TEST_SUITE_P(Models, SameScores,
                         ::testing::Values("gpt2", "nano_switch", "olmoe", "deepseek_v3"));

}  // namespace
}  // namespace greenmoe

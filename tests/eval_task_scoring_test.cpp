// Task scoring as lm-evaluation-harness scores: its pair encoding and truncation, acc and
// acc_norm with their standard errors, LAMBADA-style greedy accuracy and perplexity, MMLU-style
// group averages, and its results layout.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/eval/language_model.h"
#include "greenmoe/eval/task_scoring.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;

const LanguageModel& tiny_gpt2() {
    static const auto model =
        open_language_model(fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/hellaswag/tiny_gpt2",
                            testing::tokenizer_dir().string());
    return *model;
}

TEST(TaskScoring, EncodePairAsTheHarness) {
    const LanguageModel& m = tiny_gpt2();
    // The context's trailing space moves to the continuation: "Answer:" + " yes".
    const EncodedPair a = encode_pair(m, "Question: is it? Answer: ", "yes");
    const EncodedPair b = encode_pair(m, "Question: is it? Answer:", " yes");
    EXPECT_EQ(a.context, b.context);
    EXPECT_EQ(a.continuation, b.continuation);
    EXPECT_EQ(b.continuation, m.encode(" yes"));
    // The continuation is what the whole text's encoding has past the length of the
    // context's: "The cat" is 2 tokens, "The cats sat" 3 ("cats" one token), so " sat".
    const EncodedPair c = encode_pair(m, "The cat", "s sat");
    EXPECT_EQ(c.context, m.encode("The cat"));
    EXPECT_EQ(c.continuation, m.encode(" sat"));
    // An empty context starts from the end-of-text token.
    const EncodedPair e = encode_pair(m, "", "Hello");
    EXPECT_EQ(e.context, (std::vector<int32_t>{50256}));
    // Longer than the window (64): (context + continuation)[-(64 + 1):], per pair.
    std::string long_text;
    for (int i = 0; i < 100; ++i) long_text += " word";
    const EncodedPair t = encode_pair(m, long_text, " end of it");
    EXPECT_TRUE(t.truncated);
    EXPECT_EQ(t.context.size() + t.continuation.size(), 65u);
    const EncodedPair shorter = encode_pair(m, long_text, " end");
    EXPECT_EQ(shorter.context.size(), 65u - shorter.continuation.size());
}

// A tokenizer that puts its BOS in front (Llama-style): every context starts with it, as the
// harness's tok_encode adds it; an empty context is the BOS, and a continuation that starts
// with the BOS itself gives it up to the context.
TEST(TaskScoring, EncodePairWithABosTokenizer) {
    testing::TempDir tmp;
    const auto m = open_language_model(testing::hf_model_with_tokenizer(tmp.path(), "olmoe"));
    ASSERT_EQ(m->context_prefix(), std::vector<int32_t>{1});
    const EncodedPair a = encode_pair(*m, "the", " bat");
    EXPECT_EQ(a.context.front(), 1);
    EXPECT_EQ(a.context.size(), 1 + m->encode("the").size());
    const EncodedPair e = encode_pair(*m, "", "the bat");
    EXPECT_EQ(e.context, std::vector<int32_t>{1});
    EXPECT_EQ(e.continuation, m->encode("the bat"));
    const EncodedPair b = encode_pair(*m, "", "<s>the bat");
    EXPECT_EQ(b.context, std::vector<int32_t>{1});
    EXPECT_EQ(b.continuation, m->encode("the bat"));
}

TEST(TaskScoring, MeanStderrAndPooledStderrAsTheHarness) {
    const MetricValue m = mean_with_stderr({1, 0, 1, 1});
    EXPECT_DOUBLE_EQ(m.value, 0.75);
    // sample std sqrt(0.75 / 3) = 0.5, over sqrt(4).
    EXPECT_DOUBLE_EQ(m.stderr_, 0.25);
    EXPECT_TRUE(std::isnan(mean_with_stderr({1}).stderr_));
    // pooled: sqrt(Σ (n−1)·se²·n / (Σn − k) / Σn).
    const double want = std::sqrt((3 * 0.25 * 0.25 * 4 + 1 * 0.5 * 0.5 * 2) / (6.0 - 2) / 6.0);
    EXPECT_DOUBLE_EQ(pooled_stderr({0.25, 0.5}, {4, 2}), want);
}

TEST(TaskScoring, AccAndAccNormFollowTheLogLikelihoods) {
    const LanguageModel& m = tiny_gpt2();
    std::vector<TaskItem> items;
    const std::vector<std::string> choices = {"a dog", "the quick brown fox", "rain"};
    for (const std::string question : {"What runs?", "Who jumps over it?", "What falls?"}) {
        TaskItem item;
        for (const auto& c : choices) {
            item.candidates.push_back({"Question: " + question + "\nAnswer:", " " + c});
        }
        item.choices = choices;
        item.gold = static_cast<int>(items.size());
        item.group = items.size() < 2 ? "animals" : "weather";
        items.push_back(item);
    }
    TaskScoringOptions quiet;
    quiet.progress = false;
    const TaskScores r = score_task(m, "toy", items, TaskOutput::MultipleChoice, quiet);
    ASSERT_EQ(r.items.size(), 3u);
    std::vector<double> acc, acc_norm;
    for (size_t i = 0; i < items.size(); ++i) {
        const ScoredItem& s = r.items[i];
        // Each log-likelihood is the model's for that pair alone.
        for (size_t c = 0; c < choices.size(); ++c) {
            const EncodedPair p =
                encode_pair(m, items[i].candidates[c].context, items[i].candidates[c].continuation);
            // (float32 sums in another batch shape: equal to about 1e-8 relative)
            EXPECT_NEAR(s.loglik[c], m.score(p.context, {p.continuation})[0].log_likelihood, 1e-5);
        }
        int best = 0, best_norm = 0;
        for (int c = 1; c < 3; ++c) {
            if (s.loglik[size_t(c)] > s.loglik[size_t(best)]) best = c;
            const auto norm = [&](int k) {
                return s.loglik[size_t(k)] / double(choices[size_t(k)].size());
            };
            if (norm(c) > norm(best_norm)) best_norm = c;
        }
        EXPECT_EQ(s.pred, best);
        EXPECT_EQ(s.pred_norm, best_norm);
        acc.push_back(best == items[i].gold);
        acc_norm.push_back(best_norm == items[i].gold);
    }
    EXPECT_DOUBLE_EQ(r.metrics.at("acc").value, mean_with_stderr(acc).value);
    EXPECT_DOUBLE_EQ(r.metrics.at("acc_norm").stderr_, mean_with_stderr(acc_norm).stderr_);
    EXPECT_EQ(r.group_sizes.at("animals"), 2);

    // The results file: subjects as <task>_<group>, the group with micro and macro averages.
    const auto j = harness_results({r}, 5);
    EXPECT_EQ(j["n-shot"]["toy"], 5);
    EXPECT_TRUE(j["results"].contains("toy_animals"));
    EXPECT_TRUE(j["results"].contains("toy_weather"));
    EXPECT_EQ(j["group_subtasks"]["toy"], nlohmann::json({"toy_animals", "toy_weather"}));
    const double micro = r.metrics.at("acc").value;
    EXPECT_DOUBLE_EQ(j["results"]["toy"]["acc,none"].get<double>(), micro);
    const double macro =
        (r.groups.at("animals").at("acc").value + r.groups.at("weather").at("acc").value) / 2;
    EXPECT_DOUBLE_EQ(j["results"]["toy"]["acc_macro,none"].get<double>(), macro);
}

TEST(TaskScoring, LoglikelihoodTaskIsGreedyAccuracyAndPerplexity) {
    const LanguageModel& m = tiny_gpt2();
    std::vector<TaskItem> items(2);
    items[0].candidates = {{"The quick brown fox jumps over the lazy", " dog"}};
    items[1].candidates = {{"One, two, three,", " four"}};
    TaskScoringOptions quiet;
    quiet.progress = false;
    const TaskScores r = score_task(m, "lambada", items, TaskOutput::Loglikelihood, quiet);
    const double ll0 = r.items[0].loglik[0], ll1 = r.items[1].loglik[0];
    EXPECT_NEAR(r.metrics.at("perplexity").value, std::exp(-(ll0 + ll1) / 2), 1e-9);
    EXPECT_DOUBLE_EQ(r.metrics.at("acc").value,
                     (double(r.items[0].greedy[0]) + double(r.items[1].greedy[0])) / 2);
    const auto j = harness_results({r}, 0);
    EXPECT_EQ(j["results"]["lambada"]["perplexity_stderr,none"], "N/A");
}

}  // namespace
}  // namespace greenmoe

// `eval` and `generate` over Hugging Face models with their own tokenizer: HellaSwag scores,
// perplexity and greedy generation equal what the full-sequence logits give.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/eval/hf_hellaswag.h"
#include "greenmoe/eval/hf_perplexity.h"
#include "greenmoe/eval/hf_text.h"
#include "greenmoe/eval/language_model.h"
#include "greenmoe/eval/text_generation.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::TempDir;

fs::path model_with_tokenizer(const TempDir& tmp, const std::string& name) {
    return testing::hf_model_with_tokenizer(tmp.path(), name);
}

// Σ log softmax(logits[t − 1])[ids[t]] over t in [from, ids.size()), from full-sequence logits.
double loglik_from_logits(const hf::HfModel& model, const std::vector<int32_t>& ids, size_t from) {
    const std::vector<float> logits = model.logits(ids);
    const auto vocab = static_cast<size_t>(model.config().vocab_size);
    double sum = 0.0;
    for (size_t t = from; t < ids.size(); ++t) {
        const float* row = logits.data() + (t - 1) * vocab;
        double z = 0.0;
        for (size_t v = 0; v < vocab; ++v) z += std::exp(double(row[v]));
        sum += double(row[ids[t]]) - std::log(z);
    }
    return sum;
}

std::vector<int32_t> ids_of(const std::vector<int>& v) {
    return {v.begin(), v.end()};
}

HellaSwagItem item(const std::string& activity, const std::string& ctx,
                   const std::array<std::string, 4>& endings, int label) {
    HellaSwagItem it;
    it.activity_label = activity;
    it.raw_context = ctx;
    it.context = activity;
    if (!ctx.empty()) {
        it.context += ": ";
        it.context += ctx;
    }
    it.raw_endings = endings;
    it.endings = endings;
    it.label = label;
    return it;
}

class HfEval : public ::testing::TestWithParam<std::string> {};

TEST_P(HfEval, HellaSwagScoresEqualFullSequenceLogits) {
    TempDir tmp;
    const fs::path dir = model_with_tokenizer(tmp, GetParam());
    const hf::HfModel model = hf::HfModel::load(dir);
    const hf::Tokenizer tokenizer = hf::Tokenizer::load(dir);
    ASSERT_EQ(bos_prefix(tokenizer), std::vector<int32_t>{1});
    // Short enough for the fixtures' 16 positions: no context is cut.
    const std::vector<HellaSwagItem> items = {
        item("a", "the", {"hat", "bed", "tea", "dab"}, 0),
        item("b", "a cat", {"cat", "bed", "dec", "the"}, 2),
        item("ab", "", {"e", "the", "tab", "bad"}, 1),
    };
    HellaSwagOptions one_by_one;
    one_by_one.items_per_batch = 1;
    const HellaSwagResult r = evaluate_hellaswag_hf(model, tokenizer, items, one_by_one);
    ASSERT_EQ(r.items, 3);
    // Items scored together give the same scores.
    for (const int per_batch : {2, 16}) {
        HellaSwagOptions together;
        together.items_per_batch = per_batch;
        const HellaSwagResult b = evaluate_hellaswag_hf(model, tokenizer, items, together);
        for (size_t i = 0; i < items.size(); ++i) {
            for (size_t j = 0; j < 4; ++j) {
                EXPECT_NEAR(b.scores[i].sum_loss[j], r.scores[i].sum_loss[j], 1e-5);
                EXPECT_NEAR(b.scores[i].loglik[j], r.scores[i].loglik[j], 1e-5);
                EXPECT_EQ(b.scores[i].ending_tokens[j], r.scores[i].ending_tokens[j]);
            }
        }
        EXPECT_EQ(b.acc_norm(), r.acc_norm());
    }
    EXPECT_EQ(r.truncated, 0);
    for (size_t i = 0; i < items.size(); ++i) {
        for (size_t j = 0; j < 4; ++j) {
            // Completion style: <s> + tokens(ctx), then tokens(" " + ending).
            std::vector<int32_t> ids = {1};
            for (int id : tokenizer.encode(items[i].raw_context, false)) ids.push_back(id);
            const size_t from = ids.size();
            std::string ending = " ";
            ending += items[i].raw_endings[j];
            for (int id : tokenizer.encode(ending, false)) ids.push_back(id);
            EXPECT_NEAR(r.scores[i].sum_loss[j], -loglik_from_logits(model, ids, from), 1e-4)
                << i << " " << j;
            EXPECT_EQ(r.scores[i].ending_tokens[j], static_cast<int>(ids.size() - from));
            // Harness style: the continuation is split off the whole encoding.
            const auto ctx = tokenizer.encode(items[i].context, false);
            const auto whole =
                tokenizer.encode(items[i].context + " " + items[i].endings[j], false);
            // The harness feeds the context's own tokens, then the rest of the whole encoding.
            std::vector<int32_t> h = {1};
            h.insert(h.end(), ctx.begin(), ctx.end());
            h.insert(h.end(), whole.begin() + long(ctx.size()), whole.end());
            EXPECT_NEAR(r.scores[i].loglik[j], loglik_from_logits(model, h, 1 + ctx.size()), 1e-4)
                << i << " " << j;
        }
    }
}

TEST_P(HfEval, PerplexityIsExpMeanNllOfFullSequenceLogits) {
    TempDir tmp;
    const fs::path dir = model_with_tokenizer(tmp, GetParam());
    const hf::HfModel model = hf::HfModel::load(dir);
    const hf::Tokenizer tokenizer = hf::Tokenizer::load(dir);
    const auto ids = ids_of(tokenizer.encode("the cat ate the bat"));
    ASSERT_GE(ids.size(), 6u);
    ASSERT_LE(ids.size(), 16u);
    const PerplexityResult r = evaluate_perplexity(model, ids);
    EXPECT_EQ(r.tokens, static_cast<int64_t>(ids.size() - 1));
    EXPECT_EQ(r.windows, 1);
    const double nll = -loglik_from_logits(model, ids, 1) / double(ids.size() - 1);
    EXPECT_NEAR(r.perplexity(), std::exp(nll), 1e-4 * std::exp(nll));

    // Windows of 4 every 2 tokens: each window after the first predicts its last two tokens.
    PerplexityOptions o;
    o.context = 4;
    o.stride = 2;
    const PerplexityResult s = evaluate_perplexity(model, ids, o);
    double want = -loglik_from_logits(model, {ids.begin(), ids.begin() + 4}, 1);
    for (size_t begin = 2; begin + 2 < ids.size(); begin += 2) {
        const size_t end = std::min(begin + 4, ids.size());
        want -= loglik_from_logits(model, {ids.begin() + long(begin), ids.begin() + long(end)}, 2);
    }
    EXPECT_EQ(s.tokens, static_cast<int64_t>(ids.size() - 1));
    EXPECT_NEAR(s.nll_sum, want, 1e-4);
}

TEST_P(HfEval, GreedyGenerationIsTheArgmaxChain) {
    TempDir tmp;
    const fs::path dir = model_with_tokenizer(tmp, GetParam());
    const hf::HfModel model = hf::HfModel::load(dir);
    const hf::Tokenizer tokenizer = hf::Tokenizer::load(dir);
    hf::GenerateOptions o;
    o.temperature = 0.0;
    o.max_new_tokens = 8;
    std::string streamed;
    const auto language_model = open_language_model(dir);
    const GeneratedText got = generate_text(*language_model, "the cat", o, false,
                                            [&](const std::string& s) { streamed += s; });
    auto ids = ids_of(tokenizer.encode("the cat"));
    std::vector<int> want;
    const auto vocab = static_cast<size_t>(model.config().vocab_size);
    for (int step = 0; step < 8; ++step) {
        const auto logits = model.logits(ids);
        const float* last = logits.data() + (ids.size() - 1) * vocab;
        const auto next = static_cast<int32_t>(std::max_element(last, last + vocab) - last);
        want.push_back(next);
        ids.push_back(next);
        if (next == 2) break;  // </s>
    }
    EXPECT_EQ(got.new_tokens, static_cast<int64_t>(want.size()));
    const auto prompt = tokenizer.encode("the cat");
    std::vector<int> all = prompt;
    for (const int id : want) {
        if (id < tokenizer.vocab_size()) all.push_back(id);  // the model's vocabulary is larger
    }
    EXPECT_EQ(got.text, tokenizer.decode(all).substr(tokenizer.decode(prompt).size()));
    EXPECT_EQ(streamed, got.text);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfEval, ::testing::Values("olmoe", "granitemoe", "qwen2_moe"));

TEST(HfEvalCli, EvalAndGenerateWithModel) {
    TempDir tmp;
    const fs::path dir = model_with_tokenizer(tmp, "olmoe");
    const std::string bin = testing::greenmoe_binary().string();
    testing::write_text_file(tmp / "text.txt", "the cat ate the bat");
    auto r = testing::run_command(
        bin + " eval --model " + dir.string() + " --task perplexity --no-energy -q --data " +
        (tmp / "text.txt").string() + " --json " + (tmp / "p.json").string() + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const Json p = Json::parse(testing::read_text_file(tmp / "p.json"));
    const hf::HfModel model = hf::HfModel::load(dir);
    const hf::Tokenizer tokenizer = hf::Tokenizer::load(dir);
    const auto ids = ids_of(tokenizer.encode("the cat ate the bat"));
    EXPECT_NEAR(p["perplexity"].get<double>(), evaluate_perplexity(model, ids).perplexity(), 1e-6);

    testing::write_text_file(
        tmp / "hs.jsonl",
        R"({"activity_label": "tea", "ctx_a": "a cat ate", "ctx_b": "the", "ctx": "a cat ate the", "endings": ["hat", "bed", "tea", "dab"], "label": 1})"
        "\n");
    r = testing::run_command(
        bin + " eval --model " + dir.string() + " --task hellaswag --no-energy -q --data " +
        (tmp / "hs.jsonl").string() + " --json " + (tmp / "h.json").string() + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(Json::parse(testing::read_text_file(tmp / "h.json"))["items"], 1);

    r = testing::run_command(bin + " generate --model " + dir.string() +
                             " --prompt 'the cat' --temperature 0 -n 4 --no-energy 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.rfind("the cat", 0), 0u) << r.output;
}

TEST(HfEvalCli, BadCommandLinesExitWithUsage) {
    TempDir tmp;
    const fs::path dir = model_with_tokenizer(tmp, "olmoe");
    const std::string bin = testing::greenmoe_binary().string();
    std::string model = " --model ";
    model += dir.string();
    auto r = testing::run_command(bin + " eval" + model + " --task perplexity --no-energy 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("--data"), std::string::npos) << r.output;
    r = testing::run_command(bin + " eval" + model + " --checkpoint " + dir.string() +
                             " --no-energy 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = testing::run_command(bin + " eval" + model + " --task val-loss --no-energy 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = testing::run_command(bin + " generate" + model + " --top-p 0 --no-energy 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = testing::run_command(bin + " generate --no-energy 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace greenmoe

// LanguageModel: continuation log-likelihoods of a Hugging Face model against the float64
// logits transformers gives (tests/fixtures/hf-models, tools/fixtures/make_hf_fixtures.py),
// and of a greenmoe model against its own full-sequence forward; the shared-context path
// equals scoring each continuation alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/eval/language_model.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/model_loader.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;

fs::path source_dir() {
    return GREENMOE_SOURCE_DIR;
}

// Σ log softmax(logits[t − 1])[seq[t]] for t in [from, to), in double.
double reference_loglik(const nlohmann::json& logits, const std::vector<int32_t>& seq, size_t from,
                        size_t to) {
    double sum = 0.0;
    for (size_t t = from; t < to; ++t) {
        const auto& row = logits[t - 1];
        double top = -1e300;
        for (const auto& v : row) top = std::max(top, v.get<double>());
        double z = 0.0;
        for (const auto& v : row) z += std::exp(v.get<double>() - top);
        sum += row[size_t(seq[t])].get<double>() - top - std::log(z);
    }
    return sum;
}

class HfScoring : public ::testing::TestWithParam<const char*> {};

TEST_P(HfScoring, ContinuationsMatchTransformersFloat64) {
    const fs::path dir = source_dir() / "tests/fixtures/hf-models" / GetParam();
    const auto fixture = nlohmann::json::parse(read_file(dir / "logits.json"));
    // Only the token ids are scored here; any tokenizer.json serves for opening the model.
    const auto model = open_language_model(
        dir, (source_dir() / "tests/fixtures/hf-tokenizers/granitemoe_tokenizer.json").string());
    for (size_t s = 0; s < fixture.at("sequences").size(); ++s) {
        const auto seq = fixture["sequences"][s].get<std::vector<int32_t>>();
        const auto& logits = fixture["logits"][s];
        for (const size_t k : {size_t{1}, size_t{5}, size_t{11}}) {
            const std::vector<int32_t> context(seq.begin(), seq.begin() + long(k));
            // Continuations of several lengths after the same context.
            std::vector<std::vector<int32_t>> conts;
            for (const size_t end : {k + 1, k + 3, seq.size()}) {
                conts.emplace_back(seq.begin() + long(k), seq.begin() + long(end));
            }
            const auto scores = model->score(context, conts);
            ASSERT_EQ(scores.size(), conts.size());
            for (size_t c = 0; c < conts.size(); ++c) {
                const double want = reference_loglik(logits, seq, k, k + conts[c].size());
                EXPECT_NEAR(scores[c].log_likelihood, want, 1e-4 * (1 + std::fabs(want)))
                    << GetParam() << " seq " << s << " k " << k << " cont " << c;
                EXPECT_EQ(scores[c].tokens, static_cast<int64_t>(conts[c].size()));
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfScoring,
                         ::testing::Values("olmoe", "qwen2_moe", "deepseek_v3", "granitemoe"));

TEST(GreenmoeScoring, SharedContextEqualsTheFullSequenceForward) {
    const fs::path dir = source_dir() / "tests/fixtures/hellaswag/tiny_gpt2";
    const auto model = open_language_model(dir, testing::tokenizer_dir().string());
    EXPECT_EQ(model->max_length(), 64);
    EXPECT_TRUE(model->context_prefix().empty());
    EXPECT_EQ(model->empty_context_token(), 50256);
    EXPECT_EQ(model->encode(" hello world"), (std::vector<int32_t>{23748, 995}));

    const auto full = load_model(dir, 1, 64);
    const std::vector<int32_t> seq = {464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13};
    std::vector<int> tokens(seq.begin(), seq.end() - 1), targets(seq.begin() + 1, seq.end());
    const int T = static_cast<int>(tokens.size());
    full->forward(tokens.data(), nullptr, 1, T);
    const GptConfig& cfg = full->config();
    std::vector<double> token_ll(seq.size(), 0.0);  // token_ll[t]: log P(seq[t] | seq[<t])
    std::vector<bool> token_greedy(seq.size(), true);
    for (int t = 0; t < T; ++t) {
        const float* row = full->logits() + size_t(t) * cfg.padded_vocab_size;
        double top = *std::max_element(row, row + cfg.vocab_size), z = 0.0;
        for (int v = 0; v < cfg.vocab_size; ++v) z += std::exp(double(row[v]) - top);
        token_ll[size_t(t) + 1] = double(row[targets[size_t(t)]]) - top - std::log(z);
        token_greedy[size_t(t) + 1] =
            std::max_element(row, row + cfg.vocab_size) - row == targets[size_t(t)];
    }
    for (const size_t k : {size_t{1}, size_t{4}}) {
        const std::vector<int32_t> context(seq.begin(), seq.begin() + long(k));
        std::vector<std::vector<int32_t>> conts;
        for (const size_t end : {k + 1, k + 2, seq.size()}) {
            conts.emplace_back(seq.begin() + long(k), seq.begin() + long(end));
        }
        const auto scores = model->score(context, conts);
        for (size_t c = 0; c < conts.size(); ++c) {
            double want = 0.0;
            bool greedy = true;
            for (size_t t = k; t < k + conts[c].size(); ++t) {
                want += token_ll[t];
                greedy = greedy && token_greedy[t];
            }
            EXPECT_NEAR(scores[c].log_likelihood, want, 1e-4 * (1 + std::fabs(want)))
                << "k " << k << " cont " << c;
            EXPECT_EQ(scores[c].greedy, greedy);
            // Alone, the same continuation scores the same.
            const auto alone = model->score(context, {conts[c]});
            EXPECT_NEAR(alone[0].log_likelihood, scores[c].log_likelihood, 1e-5);
        }
    }
    // A request past the window is refused, never silently cut.
    const std::vector<int32_t> long_context(64, 13);
    EXPECT_NE(testing::error_message([&] {
                  model->score(long_context, {{13}, {13, 13}});
              }).find("exceed the window of 64"),
              std::string::npos);
}

}  // namespace
}  // namespace greenmoe

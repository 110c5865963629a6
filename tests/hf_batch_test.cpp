// A batch of sequences of different lengths equals its sequences run one by one; scoring a
// context's continuations together equals scoring each alone and the full-sequence logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "greenmoe/hf/hf_model.h"
#include "greenmoe/hf/scoring.h"
#include "test_support.h"

namespace greenmoe::hf {
namespace {

namespace fs = std::filesystem;

HfModel load_fixture(const std::string& name) {
    const fs::path dir = greenmoe::testing::shared_data() / "hf-fixtures";
    return HfModel::load(dir / ("tiny_" + name + "_config.json"),
                         dir / ("tiny_" + name + ".safetensors"));
}

std::vector<int32_t> tokens(int n, int seed, int vocab) {
    std::vector<int32_t> ids;
    for (int i = 0; i < n; ++i) ids.push_back((i * 7 + seed * 5 + 1) % vocab);
    return ids;
}

class HfBatch : public ::testing::TestWithParam<std::string> {};

TEST_P(HfBatch, BatchEqualsSequencesOneByOne) {
    const HfModel model = load_fixture(GetParam());
    const int vocab = model.config().vocab_size;
    // Three sequences, two of them continuing caches of different lengths.
    const std::vector<std::vector<int32_t>> prefix = {{}, tokens(6, 1, vocab), tokens(3, 2, vocab)};
    const std::vector<std::vector<int32_t>> seqs = {tokens(16, 0, vocab), tokens(5, 3, vocab),
                                                    tokens(9, 4, vocab)};
    std::vector<KvCache> caches(3), alone(3);
    std::vector<std::span<const int32_t>> inputs;
    std::vector<KvCache*> ptrs;
    for (size_t s = 0; s < 3; ++s) {
        if (!prefix[s].empty()) {
            model.forward(prefix[s], caches[s]);
            model.forward(prefix[s], alone[s]);
        }
        inputs.emplace_back(seqs[s]);
        ptrs.push_back(&caches[s]);
    }
    const auto batch = model.forward_batch(inputs, ptrs);
    ASSERT_EQ(batch.size(), 3u);
    for (size_t s = 0; s < 3; ++s) {
        const std::vector<float> want = model.forward(seqs[s], alone[s]);
        ASSERT_EQ(batch[s].size(), want.size());
        // Products over different row counts round differently: a relative bound.
        const double bound = 1e-5 * std::max(1.0, greenmoe::testing::max_abs(want));
        EXPECT_LE(greenmoe::testing::max_abs_diff(batch[s], want.data()), bound) << s;
        EXPECT_EQ(caches[s].length(), alone[s].length());
    }
}

TEST_P(HfBatch, ContinuationsScoredTogetherEqualAloneAndFullSequence) {
    const HfModel model = load_fixture(GetParam());
    const int vocab = model.config().vocab_size;
    const std::vector<int32_t> context = tokens(7, 5, vocab);
    const std::vector<std::vector<int32_t>> conts = {tokens(4, 6, vocab), tokens(1, 7, vocab),
                                                     tokens(9, 8, vocab)};
    const auto together = score_continuations(model, context, conts);
    ASSERT_EQ(together.size(), conts.size());
    for (size_t c = 0; c < conts.size(); ++c) {
        const auto alone = score_continuations(model, context, {conts[c]});
        EXPECT_NEAR(together[c].log_likelihood, alone[0].log_likelihood, 1e-5);
        EXPECT_EQ(together[c].greedy, alone[0].greedy);
        EXPECT_EQ(together[c].tokens, static_cast<int64_t>(conts[c].size()));
        // From the logits of context + continuation in one pass.
        std::vector<int32_t> full = context;
        full.insert(full.end(), conts[c].begin(), conts[c].end());
        const std::vector<float> logits = model.logits(full);
        double ll = 0.0;
        for (size_t t = context.size(); t < full.size(); ++t) {
            const float* row = logits.data() + (t - 1) * static_cast<size_t>(vocab);
            double sum = 0.0;
            for (int v = 0; v < vocab; ++v) sum += std::exp(double(row[v]));
            ll += double(row[full[t]]) - std::log(sum);
        }
        EXPECT_NEAR(together[c].log_likelihood, ll, 1e-4) << c;
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfBatch,
                         ::testing::Values("llama", "mistral", "mixtral", "qwen3_moe",
                                           "deepseek_v2", "granitemoeshared"),
                         [](const auto& info) { return info.param; });

TEST(HfScoring, EmptyContextIsRefused) {
    const HfModel model = load_fixture("llama");
    const std::string msg = greenmoe::testing::error_message(
        [&] { score_continuations(model, std::span<const int32_t>(), {{1}}); });
    EXPECT_NE(msg.find("context is empty"), std::string::npos) << msg;
}

}  // namespace
}  // namespace greenmoe::hf

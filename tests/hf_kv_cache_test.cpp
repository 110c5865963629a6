// Incremental decoding with the KV cache gives the logits of full recomputation.
#include <gtest/gtest.h>

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "greenmoe/hf/hf_model.h"
#include "test_support.h"

namespace greenmoe::hf {
namespace {

namespace fs = std::filesystem;

class HfKvCache : public ::testing::TestWithParam<std::string> {};

// Token by token, and in uneven chunks, against one pass over the whole sequence (16 tokens:
// past Mistral's window of 4, so the window slides over the cache).
TEST_P(HfKvCache, DecodingEqualsRecomputation) {
    const fs::path dir = greenmoe::testing::shared_data() / "hf-fixtures";
    const std::string name = "tiny_" + GetParam();
    const HfModel model =
        HfModel::load(dir / (name + "_config.json"), dir / (name + ".safetensors"));
    const int vocab = model.config().vocab_size;
    std::vector<int32_t> ids;
    for (int i = 0; i < 16; ++i) ids.push_back((i * 7 + 3) % vocab);
    const std::vector<float> full = model.logits(ids);

    for (const std::vector<size_t>& chunks :
         {std::vector<size_t>(16, 1), std::vector<size_t>{5, 1, 7, 3}}) {
        KvCache cache;
        std::vector<float> got;
        size_t at = 0;
        for (const size_t n : chunks) {
            const auto part = model.forward(std::span(ids).subspan(at, n), cache);
            got.insert(got.end(), part.begin(), part.end());
            at += n;
            EXPECT_EQ(cache.length(), static_cast<int64_t>(at));
        }
        ASSERT_EQ(got.size(), full.size());
        EXPECT_LE(greenmoe::testing::max_abs_diff(got, full.data()), 1e-5) << name;
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfKvCache,
                         ::testing::Values("llama", "mistral", "mixtral", "qwen2", "qwen3",
                                           "qwen3_moe", "deepseek_v2", "granitemoeshared"),
                         [](const auto& info) { return info.param; });

// Latent attention caches the latent rows only (rank + rope dims per position, no expanded
// keys or values), and decoding from them — one token at a time attends in the latent
// space, a chunk expands them — gives the logits of recomputation and of transformers.
TEST(HfKvCache, LatentAttentionCachesLatentRowsAndDecodesExactly) {
    const fs::path dir = fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/hf-models/deepseek_v3";
    const HfModel model = HfModel::load(dir);
    const ModelConfig& c = model.config();
    const int vocab = c.vocab_size;
    std::vector<int32_t> ids;
    for (int i = 0; i < 12; ++i) ids.push_back((i * 5 + 1) % vocab);
    const std::vector<float> full = model.logits(ids);
    KvCache cache;
    std::vector<float> got;
    for (const auto& [at, n] :
         std::vector<std::pair<size_t, size_t>>{{0, 4}, {4, 1}, {5, 1}, {6, 3}, {9, 1}, {10, 2}}) {
        const auto part = model.forward(std::span(ids).subspan(at, n), cache);
        got.insert(got.end(), part.begin(), part.end());
    }
    EXPECT_LE(greenmoe::testing::max_abs_diff(got, full.data()), 1e-5);
    ASSERT_FALSE(cache.layers.empty());
    for (const LayerCache& layer : cache.layers) {
        EXPECT_EQ(layer.latent_dim, c.kv_lora_rank + c.qk_rope_head_dim);
        EXPECT_EQ(layer.latent.size(), size_t(12 * layer.latent_dim));
        EXPECT_TRUE(layer.k.empty());
        EXPECT_TRUE(layer.v.empty());
    }
    EXPECT_EQ(cache.length(), 12);
}

}  // namespace
}  // namespace greenmoe::hf

// GptInference (the KV-cache forward) against the full forward, for dense and every MoE
// variant, and cached generation against recomputing the whole text each step.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "greenmoe/eval/sampler.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/gpt_inference.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/train/adamw.h"
#include "greenmoe/train/checkpoint.h"
#include "greenmoe/train/train_config.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::error_message;

struct Variant {
    const char* name;
    const char* mlp;
    const char* attn;
    int moe_every;
};

GptConfig variant_config(const Variant& v) {
    GptConfig c;
    c.n_layer = 3;
    c.n_head = 2;
    c.n_embd = 16;
    c.block_size = 32;
    c.vocab_size = 61;
    c.mlp = v.mlp;
    c.attn = v.attn;
    c.moe_every = v.moe_every;
    if (c.mlp != "dense" || c.attn != "mha") {
        c.n_experts = 4;
        c.top_k = 2;
    }
    c.finalize();
    return c;
}

// Random weights ten times nanoGPT's scale, so that logits and routing are far from ties.
void init_sharp(GptModel& model, uint64_t seed) {
    model.init_weights(seed);
    for (size_t i = 0; i < model.num_parameters(); ++i) model.params()[i] *= 10.0f;
    for (size_t i = 0; i < model.config().n_experts * size_t(model.num_moe_layers()); ++i) {
        model.moe_bias()[i] = 0.1f * static_cast<float>(i % 3);  // selection-only shifts
    }
}

std::vector<int> some_tokens(int n, int salt, int V) {
    std::vector<int> t(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) t[size_t(i)] = (i * 17 + salt * 5 + 3) % V;
    return t;
}

class Inference : public ::testing::TestWithParam<Variant> {};

TEST_P(Inference, CachedChunksGiveTheFullForwardsLogits) {
    const GptConfig config = variant_config(GetParam());
    GptModel model(config, 1, 32);
    init_sharp(model, 5);
    model.set_training(false);
    model.set_capacity_limits(false);
    const int T = 29, Vp = config.padded_vocab_size;
    const std::vector<int> tokens = some_tokens(T, 1, config.vocab_size);
    model.forward(tokens.data(), nullptr, 1, T);
    const std::vector<float> full(model.logits(), model.logits() + size_t(T) * Vp);

    // The same text in chunks of 5, 1, 1, 9, 13 positions through the cache.
    GptInference inference(model, 2, 32, 16);
    std::vector<float> cached;
    int pos = 0;
    for (int chunk : {5, 1, 1, 9, 13}) {
        const int slot = 1;
        const float* logits = inference.forward(tokens.data() + pos, &slot, &pos, &chunk, 1,
                                                GptInference::Logits::All);
        cached.insert(cached.end(), logits, logits + size_t(chunk) * Vp);
        pos += chunk;
    }
    ASSERT_EQ(pos, T);
    const double scale = testing::max_abs(full);
    EXPECT_GT(scale, 1.0);
    // Different product shapes round differently; the 10× weights amplify it a little.
    EXPECT_LT(testing::max_abs_diff(full, cached.data()), 1e-4 * scale) << GetParam().name;
}

TEST_P(Inference, SequencesOfABatchDoNotAffectEachOther) {
    const GptConfig config = variant_config(GetParam());
    GptModel model(config, 1, 1);
    init_sharp(model, 6);
    const int Vp = config.padded_vocab_size;
    const std::vector<int> a = some_tokens(12, 2, config.vocab_size);
    const std::vector<int> b = some_tokens(7, 3, config.vocab_size);
    const std::vector<int> c = some_tokens(20, 4, config.vocab_size);

    // Alone: each sequence in slot 0 of its own cache.
    std::vector<std::vector<float>> alone;
    for (const auto* s : {&a, &b, &c}) {
        GptInference one(model, 1, 32, 32);
        const int slot = 0, start = 0, count = static_cast<int>(s->size());
        const float* logits =
            one.forward(s->data(), &slot, &start, &count, 1, GptInference::Logits::All);
        alone.emplace_back(logits, logits + size_t(count) * Vp);
    }
    // Together, in other slots, b and c split over two calls.
    GptInference many(model, 4, 32, 64);
    std::vector<int> packed = a;
    packed.insert(packed.end(), b.begin(), b.begin() + 3);
    packed.insert(packed.end(), c.begin(), c.begin() + 10);
    const int slots1[] = {3, 0, 2}, starts1[] = {0, 0, 0}, counts1[] = {12, 3, 10};
    const float* l1 =
        many.forward(packed.data(), slots1, starts1, counts1, 3, GptInference::Logits::All);
    const std::vector<float> first(l1, l1 + size_t(25) * Vp);
    std::vector<int> rest(b.begin() + 3, b.end());
    rest.insert(rest.end(), c.begin() + 10, c.end());
    const int slots2[] = {0, 2}, starts2[] = {3, 10}, counts2[] = {4, 10};
    const float* l2 =
        many.forward(rest.data(), slots2, starts2, counts2, 2, GptInference::Logits::All);
    const std::vector<float> second(l2, l2 + size_t(14) * Vp);

    const double tol = 1e-4 * testing::max_abs(alone[0]);  // product shapes differ
    auto rows = [&](const std::vector<float>& v, int row0, int n) {
        return std::vector<float>(v.begin() + size_t(row0) * Vp, v.begin() + size_t(row0 + n) * Vp);
    };
    EXPECT_LT(testing::max_abs_diff(rows(first, 0, 12), alone[0].data()), tol);
    EXPECT_LT(testing::max_abs_diff(rows(first, 12, 3), alone[1].data()), tol);
    EXPECT_LT(testing::max_abs_diff(rows(first, 15, 10), alone[2].data()), tol);
    EXPECT_LT(testing::max_abs_diff(rows(second, 0, 4), alone[1].data() + size_t(3) * Vp), tol);
    EXPECT_LT(testing::max_abs_diff(rows(second, 4, 10), alone[2].data() + size_t(10) * Vp), tol);

    // Last-position logits are the All logits' last rows.
    GptInference again(model, 4, 32, 64);
    const float* last =
        again.forward(packed.data(), slots1, starts1, counts1, 3, GptInference::Logits::Last);
    EXPECT_LT(testing::max_abs_diff(rows(first, 11, 1), last), tol);
    EXPECT_LT(testing::max_abs_diff(rows(first, 14, 1), last + Vp), tol);
    EXPECT_LT(testing::max_abs_diff(rows(first, 24, 1), last + 2 * Vp), tol);
}

TEST_P(Inference, GreedyGenerationWithTheCacheEqualsRecomputing) {
    const GptConfig config = variant_config(GetParam());
    GptModel model(config, 1, 32);
    init_sharp(model, 7);
    SampleOptions greedy;
    greedy.temperature = 0.0f;
    greedy.max_new_tokens = 29;  // 3 + 29 = the whole block
    const std::vector<int> prompt = some_tokens(3, 9, config.vocab_size);
    const std::vector<int> cached = generate(model, prompt, greedy);
    const std::vector<int> recomputed = generate_recompute(model, prompt, greedy);
    ASSERT_EQ(cached.size(), 29u);
    EXPECT_EQ(cached, recomputed) << GetParam().name;
    EXPECT_TRUE(model.training());  // restored

    // Sampling too: the draws are keyed by position, so both paths see the same ones.
    SampleOptions sampled;
    sampled.temperature = 0.8f;
    sampled.top_k = 10;
    sampled.seed = 42;
    sampled.max_new_tokens = 20;
    EXPECT_EQ(generate(model, prompt, sampled), generate_recompute(model, prompt, sampled));
}

INSTANTIATE_TEST_SUITE_P(
    Variants, Inference,
    ::testing::Values(Variant{"dense", "dense", "mha", 1}, Variant{"olnn", "olnn", "mha", 1},
                      Variant{"switch", "switch", "mha", 1}, Variant{"gshard", "gshard", "mha", 1},
                      Variant{"condmlp", "condmlp", "mha", 1}, Variant{"moa", "dense", "moa", 1},
                      Variant{"switch_every2", "switch", "mha", 2}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(InferenceGeneration, RunsPastTheBlockSizeByRestartingTheCache) {
    const GptConfig config = variant_config(Variant{"dense", "dense", "mha", 1});
    GptModel model(config, 1, 32);
    init_sharp(model, 8);
    SampleOptions options;
    options.max_new_tokens = 100;  // three times the block
    options.seed = 3;
    const std::vector<int> prompt = some_tokens(40, 1, config.vocab_size);  // longer than a block
    const std::vector<int> a = generate(model, prompt, options);
    EXPECT_EQ(a.size(), 100u);
    EXPECT_EQ(a, generate(model, prompt, options));
    // Until the first restart, it is exactly the windowed recompute.
    options.temperature = 0.0f;
    options.max_new_tokens = 1;
    EXPECT_EQ(generate(model, prompt, options), generate_recompute(model, prompt, options));
}

TEST(InferenceErrors, BadTokensPositionsAndSlotsAreRefused) {
    const GptConfig config = variant_config(Variant{"dense", "dense", "mha", 1});
    GptModel model(config, 1, 1);
    model.init_weights(1);
    GptInference inference(model, 2, 16, 8);
    const int bad_token = config.vocab_size, ok = 1, slot = 0, start = 0, count = 1;
    EXPECT_NE(error_message([&] {
                  inference.forward(&bad_token, &slot, &start, &count, 1,
                                    GptInference::Logits::Last);
              }).find("outside the vocabulary"),
              std::string::npos);
    const int late = 16;
    EXPECT_NE(error_message([&] {
                  inference.forward(&ok, &slot, &late, &count, 1, GptInference::Logits::Last);
              }).find("outside the cache length 16"),
              std::string::npos);
    const int two[] = {1, 1}, same_slot[] = {0, 0}, starts[] = {0, 0}, counts[] = {1, 1};
    EXPECT_NE(error_message([&] {
                  inference.forward(two, same_slot, starts, counts, 2, GptInference::Logits::Last);
              }).find("at most once"),
              std::string::npos);
    const std::vector<int> many(9, 1);
    const int nine = 9;
    EXPECT_NE(error_message([&] {
                  inference.forward(many.data(), &slot, &start, &nine, 1,
                                    GptInference::Logits::Last);
              }).find("more than the allocated 8 tokens"),
              std::string::npos);
    EXPECT_NE(error_message([&] { GptInference(model, 1, 33, 8); }).find("block_size"),
              std::string::npos);
}

TEST(InferenceLoading, ACheckpointsBalancingBiasIsLoaded) {
    const GptConfig config = variant_config(Variant{"switch", "switch", "mha", 1});
    GptModel model(config, 1, 8);
    init_sharp(model, 9);
    for (size_t i = 0; i < model.moe_bias_size(); ++i) model.moe_bias()[i] = 0.25f * float(i);
    AdamW optimizer(model.layout(), AdamWConfig{});
    TrainState state;
    TrainConfig train_config;
    train_config.model = config;
    state.config = train_config_to_json(train_config);
    testing::TempDir tmp;
    save_checkpoint(tmp.path(), model, optimizer, state, 1);
    const auto loaded = load_model(tmp.path(), 1, 1);
    ASSERT_EQ(loaded->moe_bias_size(), model.moe_bias_size());
    for (size_t i = 0; i < model.moe_bias_size(); ++i) {
        EXPECT_EQ(loaded->moe_bias()[i], model.moe_bias()[i]) << i;
    }
}

}  // namespace
}  // namespace greenmoe

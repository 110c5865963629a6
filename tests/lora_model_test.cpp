// LoRA training's forward and backward pass on the tiny Hugging Face fixtures: adapter
// gradients against central differences of the loss (every architecture the engine runs:
// GQA with biases, q/k norms whole and per head, clipping, sliding window, latent attention,
// softmax / sigmoid / group-limited routing, shared experts, Granite's multipliers, bf16
// weights), dropout, and the loss against the inference engine's logits with the adapter
// merged.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "grad_check.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/lora/lora_model.h"
#include "greenmoe/lora/lora_spec.h"
#include "test_support.h"

namespace greenmoe::lora {
namespace {

namespace fs = std::filesystem;

struct Case {
    std::string name;
    std::string targets;
};

hf::HfModel load_case(const std::string& name) {
    const fs::path fixtures = fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "hf-models";
    if (fs::exists(fixtures / name)) return hf::HfModel::load(fixtures / name);
    const fs::path shared = testing::shared_data() / "hf-fixtures";
    return hf::HfModel::load(shared / ("tiny_" + name + "_config.json"),
                             shared / ("tiny_" + name + ".safetensors"));
}

// Two sequences of eight tokens, a few labels ignored (a prompt's share).
TokenBatch small_batch(int vocab) {
    TokenBatch b;
    b.rows = 2;
    b.seq_len = 8;
    for (int i = 0; i < 16; ++i) {
        b.ids.push_back(static_cast<int32_t>((i * 7 + 3) % vocab));
        b.labels.push_back(i % 8 < 2 ? kIgnoreLabel : b.ids.back());
    }
    return b;
}

// Adapters with B drawn too (PEFT starts B at zero, which would leave A's gradient zero).
LoraParams random_params(const hf::HfModel& model, const std::string& targets, int64_t rank) {
    LoraSpec spec = parse_lora_spec("r=" + std::to_string(rank) +
                                    ",alpha=" + std::to_string(2 * rank) + ",targets=" + targets);
    LoraParams p = LoraParams::create(model.weights(), model.config(), spec, 7);
    for (const LoraTarget& t : p.targets()) {
        float* b = p.values() + t.b;
        for (int64_t i = 0; i < t.out * t.rank; ++i)
            b[i] = 0.3f * rng_normal(rng_key(11, t.b), static_cast<uint64_t>(i));
    }
    return p;
}

class LoraGradient : public ::testing::TestWithParam<Case> {};

TEST_P(LoraGradient, AdaptersMatchFiniteDifferences) {
    const Case& c = GetParam();
    const hf::HfModel model = load_case(c.name);
    LoraParams params = random_params(model, c.targets, 2);
    ASSERT_GT(params.targets().size(), 0u);
    LoraModel lora(model, params, 0.0);
    const TokenBatch batch = small_batch(model.config().vocab_size);
    const double tokens = static_cast<double>(batch.predicted_tokens());
    params.zero_grads();
    const LossSum loss = lora.forward_backward(batch, 1.0 / tokens, 0);
    EXPECT_EQ(loss.tokens, batch.predicted_tokens());
    // The same loss as the pass without gradient.
    EXPECT_NEAR(lora.loss(batch).sum, loss.sum, 1e-9 * std::abs(loss.sum));
    const std::vector<float> analytic(params.grads(),
                                      params.grads() + params.layout().total_floats());
    testing::GradCheckOptions options;
    options.rel_step = 1e-3;
    options.rel_tol = 2e-2;
    options.max_coords = 300;
    const auto result = testing::check_gradient(
        params.values(), params.layout().total_floats(), analytic.data(),
        [&] { return lora.loss(batch).sum / tokens; }, options);
    EXPECT_TRUE(result.ok()) << result.describe(c.name);
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, LoraGradient,
    ::testing::Values(Case{"olmoe", "q_proj,k_proj,v_proj,o_proj,gate,gate_proj,up_proj,down_proj"},
                      Case{"qwen2_moe",
                           "q_proj,k_proj,v_proj,o_proj,gate,gate_proj,up_proj,"
                           "down_proj,shared_expert_gate"},
                      Case{"qwen2_moe_bf16", "all-linear"},
                      Case{"deepseek_v3",
                           "q_a_proj,q_b_proj,kv_a_proj_with_mqa,kv_b_proj,o_proj,"
                           "gate,gate_proj,up_proj,down_proj"},
                      Case{"deepseek_v2_group", "all-linear"}, Case{"deepseek_v2", "all-linear"},
                      Case{"qwen3", "all-linear"}, Case{"qwen3_moe", "all-linear"},
                      Case{"mistral", "all-linear"}, Case{"mixtral", "all-linear"},
                      Case{"granitemoeshared", "all-linear"}),
    [](const auto& info) { return info.param.name; });

// Dropout on the adapters' inputs: its masks are a function of the key (the same key gives
// the same loss and gradient), and the gradient is that of the dropped-out loss. On a dense
// model: a routed one can switch experts within a finite-difference step.
TEST(LoraDropout, GradientOfTheMaskedLoss) {
    const hf::HfModel model = load_case("mistral");
    LoraParams params = random_params(model, "all-linear", 2);
    LoraModel lora(model, params, 0.25);
    const TokenBatch batch = small_batch(model.config().vocab_size);
    const double tokens = static_cast<double>(batch.predicted_tokens());
    params.zero_grads();
    const double with_key_5 = lora.forward_backward(batch, 1.0 / tokens, 5).sum;
    const std::vector<float> analytic(params.grads(),
                                      params.grads() + params.layout().total_floats());
    params.zero_grads();
    EXPECT_EQ(lora.forward_backward(batch, 1.0 / tokens, 5).sum, with_key_5);
    EXPECT_EQ(std::vector<float>(params.grads(), params.grads() + analytic.size()), analytic);
    EXPECT_NE(lora.forward_backward(batch, 1.0 / tokens, 6).sum, with_key_5);
    EXPECT_NE(lora.loss(batch).sum, with_key_5);
    testing::GradCheckOptions options;
    options.rel_step = 1e-3;
    options.rel_tol = 2e-2;
    options.max_coords = 200;
    const auto result = testing::check_gradient(
        params.values(), params.layout().total_floats(), analytic.data(),
        [&] { return lora.forward_backward(batch, 0.0, 5).sum / tokens; }, options);
    EXPECT_TRUE(result.ok()) << result.describe("mistral with dropout");
}

// The training forward pass is the inference engine's: the loss equals the cross-entropy of
// the engine's logits with the adapter merged into the weights.
TEST(LoraLoss, EqualsTheEnginesLogitsWithTheAdapterMerged) {
    for (const std::string name : {"olmoe", "qwen2_moe_bf16", "deepseek_v3", "granitemoeshared"}) {
        hf::HfModel model = load_case(name);
        const LoraParams params = random_params(model, "all-linear", 3);
        LoraParams copy = params;
        const TokenBatch batch = small_batch(model.config().vocab_size);
        const LossSum trained = LoraModel(model, copy, 0.0).loss(batch);
        model.apply_lora(params.to_adapter("base"));
        const int64_t vocab = model.config().vocab_size;
        double sum = 0.0;
        for (int64_t r = 0; r < batch.rows; ++r) {
            const std::vector<int32_t> ids(batch.ids.begin() + r * batch.seq_len,
                                           batch.ids.begin() + (r + 1) * batch.seq_len);
            const std::vector<float> logits = model.logits(ids);
            for (int64_t t = 0; t + 1 < batch.seq_len; ++t) {
                const int32_t target = batch.labels[size_t(r * batch.seq_len + t + 1)];
                if (target == kIgnoreLabel) continue;
                const float* row = logits.data() + t * vocab;
                double top = row[0], z = 0.0;
                for (int64_t v = 0; v < vocab; ++v) top = std::max(top, double(row[v]));
                for (int64_t v = 0; v < vocab; ++v) z += std::exp(row[v] - top);
                sum += std::log(z) + top - row[target];
            }
        }
        EXPECT_NEAR(trained.sum, sum, 2e-5 * std::abs(sum)) << name;
    }
}

}  // namespace
}  // namespace greenmoe::lora

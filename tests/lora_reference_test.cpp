// LoRA training against PyTorch + PEFT (tests/fixtures/lora-train, written by
// tools/fixtures/make_lora_train_fixtures.py in float64): from the same initial adapter on
// the same batch, the loss, every adapter gradient, and the adapters after five AdamW steps,
// on OLMoE (q/k norms, clipping, router and per-expert adapters), Qwen2-MoE (biases, shared
// expert and its gate, a dense layer, rsLoRA), a bf16 Qwen2-MoE and DeepSeek-V3 (latent
// attention, sigmoid group-limited routing).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/hf/hf_model.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/lora/lora_model.h"
#include "greenmoe/train/adamw.h"

namespace greenmoe::lora {
namespace {

namespace fs = std::filesystem;

const fs::path kRoot = GREENMOE_SOURCE_DIR;

struct Reference {
    nlohmann::json j;
    TokenBatch batch;
};

Reference read_reference(const fs::path& dir) {
    Reference r;
    std::ifstream in(dir / "reference.json");
    r.j = nlohmann::json::parse(in);
    const auto& ids = r.j.at("ids");
    r.batch.rows = static_cast<int64_t>(ids.size());
    r.batch.seq_len = static_cast<int64_t>(ids.at(0).size());
    for (size_t s = 0; s < ids.size(); ++s) {
        for (size_t t = 0; t < ids[s].size(); ++t) {
            r.batch.ids.push_back(ids[s][t].get<int32_t>());
            r.batch.labels.push_back(r.j.at("labels")[s][t].get<int32_t>());
        }
    }
    return r;
}

// The largest |ours − reference| over every adapter tensor, relative to the largest
// |reference| (a gradient's small elements carry the float32 rounding of its large ones).
double relative_difference(const LoraParams& params, const float* ours,
                           const SafetensorsFile& reference) {
    double worst = 0.0, scale = 0.0;
    for (const ParamSpec& spec : params.layout().specs()) {
        const std::vector<float> ref = reference.read_f32(spec.name, spec.shape);
        for (size_t i = 0; i < ref.size(); ++i) {
            worst = std::max(worst, std::abs(double(ours[spec.offset + i]) - ref[i]));
            scale = std::max(scale, std::abs(double(ref[i])));
        }
    }
    EXPECT_EQ(reference.tensors().size(), params.layout().specs().size());
    return worst / scale;
}

class LoraReference : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraReference, LossGradientsAndFiveAdamWStepsMatchPyTorchAndPeft) {
    const fs::path dir = kRoot / "tests" / "fixtures" / "lora-train" / GetParam();
    const Reference ref = read_reference(dir);
    const hf::HfModel model = hf::HfModel::load(kRoot / ref.j.at("base").get<std::string>());
    LoraParams params = LoraParams::from_adapter(model.weights(), hf::read_lora_adapter(dir));
    LoraModel lora(model, params, 0.0);
    const double tokens = static_cast<double>(ref.batch.predicted_tokens());

    params.zero_grads();
    const LossSum loss = lora.forward_backward(ref.batch, 1.0 / tokens, 0);
    const double expected = ref.j.at("loss").get<double>();
    EXPECT_NEAR(loss.sum / tokens, expected, 1e-5 * expected);
    const SafetensorsFile grads = SafetensorsFile::open(dir / "grads.safetensors");
    EXPECT_LT(relative_difference(params, params.grads(), grads), 1e-5);

    const auto& a = ref.j.at("adamw");
    AdamWConfig config;
    config.beta1 = a.at("betas")[0].get<float>();
    config.beta2 = a.at("betas")[1].get<float>();
    config.eps = a.at("eps").get<float>();
    config.weight_decay = a.at("weight_decay").get<float>();
    AdamW adamw(params.layout(), config);
    const auto steps = a.at("steps").get<int>();
    for (int step = 0; step < steps; ++step) {
        params.zero_grads();
        const LossSum l = lora.forward_backward(ref.batch, 1.0 / tokens, 0);
        const double before = ref.j.at("losses")[static_cast<size_t>(step)].get<double>();
        EXPECT_NEAR(l.sum / tokens, before, 1e-5 * before) << "step " << step;
        adamw.step(params.values(), params.grads(), a.at("lr").get<float>());
    }
    const SafetensorsFile after = SafetensorsFile::open(dir / "after_steps.safetensors");
    EXPECT_LT(relative_difference(params, params.values(), after), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraReference,
                         ::testing::Values("olmoe_all", "qwen2_moe_mixed", "qwen2_moe_bf16_attn",
                                           "deepseek_v3_mla"));

}  // namespace
}  // namespace greenmoe::lora

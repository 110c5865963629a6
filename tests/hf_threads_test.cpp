// A model large enough for the parallel paths (experts on threads, BF16 weights converted in
// several tiles) gives the same logits on one thread and on four, and as its F32 copy.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "greenmoe/core/half.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/io/safetensors.h"
#include "test_support.h"

namespace greenmoe::hf {
namespace {

namespace fs = std::filesystem;
using greenmoe::testing::TempDir;

constexpr int kHidden = 256, kInter = 512, kExperts = 8, kVocab = 97, kLayers = 2;

// A random Mixtral-shaped model, written as BF16 into bf16/ and as the same values in F32
// into f32/.
void write_models(const TempDir& tmp) {
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    struct Tensor {
        std::string name;
        std::vector<int64_t> shape;
        std::vector<uint16_t> bf16;
        std::vector<float> f32;
    };
    std::vector<Tensor> tensors;
    auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float mean) {
        int64_t n = 1;
        for (const int64_t d : shape) n *= d;
        Tensor t{name, std::move(shape), {}, {}};
        for (int64_t i = 0; i < n; ++i) {
            t.bf16.push_back(f32_to_bf16(mean + scale * normal(rng)));
            t.f32.push_back(bf16_to_f32(t.bf16.back()));
        }
        tensors.push_back(std::move(t));
    };
    const float w = 1.0f / 16.0f;
    add("model.embed_tokens.weight", {kVocab, kHidden}, 1.0f, 0.0f);
    add("lm_head.weight", {kVocab, kHidden}, w, 0.0f);
    add("model.norm.weight", {kHidden}, 0.1f, 1.0f);
    for (int l = 0; l < kLayers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        add(p + "input_layernorm.weight", {kHidden}, 0.1f, 1.0f);
        add(p + "post_attention_layernorm.weight", {kHidden}, 0.1f, 1.0f);
        add(p + "self_attn.q_proj.weight", {kHidden, kHidden}, w, 0.0f);
        add(p + "self_attn.k_proj.weight", {kHidden / 2, kHidden}, w, 0.0f);
        add(p + "self_attn.v_proj.weight", {kHidden / 2, kHidden}, w, 0.0f);
        add(p + "self_attn.o_proj.weight", {kHidden, kHidden}, w, 0.0f);
        add(p + "block_sparse_moe.gate.weight", {kExperts, kHidden}, w, 0.0f);
        for (int e = 0; e < kExperts; ++e) {
            const std::string x = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
            add(x + "w1.weight", {kInter, kHidden}, w, 0.0f);
            add(x + "w3.weight", {kInter, kHidden}, w, 0.0f);
            add(x + "w2.weight", {kHidden, kInter}, w / 1.4f, 0.0f);
        }
    }
    const nlohmann::json config = {
        {"model_type", "mixtral"},     {"vocab_size", kVocab},          {"hidden_size", kHidden},
        {"intermediate_size", kInter}, {"num_hidden_layers", kLayers},  {"num_attention_heads", 4},
        {"num_key_value_heads", 2},    {"num_local_experts", kExperts}, {"num_experts_per_tok", 2},
        {"rms_norm_eps", 1e-5},        {"rope_theta", 10000.0}};
    for (const char* kind : {"bf16", "f32"}) {
        const bool half = std::string(kind) == "bf16";
        std::vector<TensorToWrite> out;
        for (const auto& t : tensors) {
            out.push_back({t.name, half ? DType::BF16 : DType::F32, t.shape,
                           half ? static_cast<const void*>(t.bf16.data())
                                : static_cast<const void*>(t.f32.data())});
        }
        fs::create_directories(tmp / kind);
        write_safetensors(tmp / kind / "model.safetensors", out);
        greenmoe::testing::write_text_file(tmp / kind / "config.json", config.dump(1));
    }
}

TEST(HfThreads, SameLogitsOnOneAndFourThreadsAndAsF32) {
    TempDir tmp;
    write_models(tmp);
    const HfModel bf16 = HfModel::load(tmp / "bf16");
    const HfModel f32 = HfModel::load(tmp / "f32");
    std::vector<int32_t> ids;
    for (int i = 0; i < 64; ++i) ids.push_back((i * 37 + 5) % kVocab);
    std::vector<float> one, four;
    {
        greenmoe::testing::ScopedThreads threads(1);
        one = bf16.logits(ids);
    }
    {
        greenmoe::testing::ScopedThreads threads(4);
        four = bf16.logits(ids);
    }
    const std::vector<float> reference = f32.logits(ids);
    const double bound = 1e-5 * std::max(1.0, greenmoe::testing::max_abs(reference));
    EXPECT_GT(greenmoe::testing::max_abs(reference), 0.1);
    EXPECT_LE(greenmoe::testing::max_abs_diff(one, four.data()), bound);
    EXPECT_LE(greenmoe::testing::max_abs_diff(one, reference.data()), bound);
}

}  // namespace
}  // namespace greenmoe::hf

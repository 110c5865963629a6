// Synthetic Hugging Face MoE models with real layer shapes for the benchmarks: a folder with
// config.json and bf16 random weights (model.safetensors) that HfModel loads like a download.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/half.h"
#include "greenmoe/io/safetensors.h"

namespace bench {

struct Shape {
    std::string name, model_type;
    int experts = 0, expert_inter = 0, top_k = 0, shared_inter = 0;
};

inline const Shape kQwen{"Qwen1.5-MoE-A2.7B", "qwen2_moe", 60, 1408, 4, 5632};
inline const Shape kOlmoe{"OLMoE-1B-7B", "olmoe", 64, 1024, 8, 0};
inline constexpr int64_t kHidden = 2048, kHeads = 16;

// Random bf16 values, one pool that every tensor takes a slice of (at its own offset).
class Pool {
  public:
    explicit Pool(size_t count) : values_(count) {
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> dist(-0.04f, 0.04f);
        for (auto& v : values_) v = greenmoe::f32_to_bf16(dist(rng));
    }
    const void* take(size_t count) {
        if (next_ + count > values_.size()) next_ = (next_ * 7 + 13) % (values_.size() - count);
        const void* p = values_.data() + next_;
        next_ += count / 3 + 1;
        return p;
    }

  private:
    std::vector<uint16_t> values_;
    size_t next_ = 0;
};

inline std::vector<uint16_t> ones(size_t n) {
    return std::vector<uint16_t>(n, greenmoe::f32_to_bf16(1.0f));
}

// `layers` decoder layers, a `vocab`-token vocabulary.
inline void write_model(const Shape& s, int layers, int vocab, const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    using greenmoe::DType;
    fs::create_directories(dir);
    nlohmann::json cfg = {{"model_type", s.model_type},
                          {"hidden_size", kHidden},
                          {"num_hidden_layers", layers},
                          {"num_attention_heads", kHeads},
                          {"num_key_value_heads", kHeads},
                          {"vocab_size", vocab},
                          {"rms_norm_eps", 1e-6},
                          {"rope_theta", s.shared_inter > 0 ? 1e6 : 1e4},
                          {"max_position_embeddings", 4096},
                          {"tie_word_embeddings", false},
                          {"hidden_act", "silu"},
                          {"num_experts", s.experts},
                          {"num_experts_per_tok", s.top_k},
                          {"norm_topk_prob", false},
                          {"torch_dtype", "bfloat16"}};
    if (s.model_type == "qwen2_moe") {
        cfg["intermediate_size"] = s.shared_inter;
        cfg["moe_intermediate_size"] = s.expert_inter;
        cfg["shared_expert_intermediate_size"] = s.shared_inter;
        cfg["decoder_sparse_step"] = 1;
        cfg["use_sliding_window"] = false;
    } else {
        cfg["intermediate_size"] = s.expert_inter;
    }
    std::ofstream(dir / "config.json") << cfg.dump(2);

    // Every tensor takes a slice: the pool holds the largest (the embedding, vocab × hidden).
    Pool pool(std::max(size_t{1} << 25, size_t(vocab) * size_t(kHidden) + 1));
    const auto h = kHidden;
    const auto norm = ones(size_t(h));
    std::vector<greenmoe::TensorToWrite> t;
    auto add = [&](std::string name, int64_t rows, int64_t cols) {
        t.push_back({std::move(name), DType::BF16, {rows, cols}, pool.take(size_t(rows * cols))});
    };
    auto add_vector = [&](std::string name, int64_t n, const void* data) {
        t.push_back({std::move(name), DType::BF16, {n}, data});
    };
    add("model.embed_tokens.weight", vocab, h);
    add("lm_head.weight", vocab, h);
    add_vector("model.norm.weight", h, norm.data());
    for (int l = 0; l < layers; ++l) {
        std::string p = "model.layers.";
        p += std::to_string(l) + ".";
        add_vector(p + "input_layernorm.weight", h, norm.data());
        add_vector(p + "post_attention_layernorm.weight", h, norm.data());
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
            add(p + "self_attn." + proj + ".weight", h, h);
        }
        if (s.model_type == "qwen2_moe") {
            for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
                add_vector(p + "self_attn." + proj + ".bias", h, pool.take(size_t(h)));
            }
        } else {
            add_vector(p + "self_attn.q_norm.weight", h, norm.data());
            add_vector(p + "self_attn.k_norm.weight", h, norm.data());
        }
        add(p + "mlp.gate.weight", s.experts, h);
        for (int e = 0; e < s.experts; ++e) {
            std::string x = p + "mlp.experts.";
            x += std::to_string(e) + ".";
            add(x + "gate_proj.weight", s.expert_inter, h);
            add(x + "up_proj.weight", s.expert_inter, h);
            add(x + "down_proj.weight", h, s.expert_inter);
        }
        if (s.shared_inter > 0) {
            add(p + "mlp.shared_expert.gate_proj.weight", s.shared_inter, h);
            add(p + "mlp.shared_expert.up_proj.weight", s.shared_inter, h);
            add(p + "mlp.shared_expert.down_proj.weight", h, s.shared_inter);
            add(p + "mlp.shared_expert_gate.weight", 1, h);
        }
    }
    greenmoe::write_safetensors(dir / "model.safetensors", t);
}

}  // namespace bench

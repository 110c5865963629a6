// The tensors of a Hugging Face model, as views into the memory-mapped safetensors files in
// their stored dtype (F32, BF16, F16), checked against the shapes the config implies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "greenmoe/hf/hf_config.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/io/safetensors_model.h"

namespace greenmoe::hf {

// A row-major [rows, cols] matrix in the mapped file; never copied whole.
struct Mat {
    const std::byte* data = nullptr;
    DType dtype = DType::F32;
    int64_t rows = 0, cols = 0;

    bool empty() const { return data == nullptr; }
    Mat row_slice(int64_t begin, int64_t count) const;
    // Row r converted to float (cols values).
    void read_row(int64_t r, float* out) const;
};

// gate, up: [intermediate, hidden]; down: [hidden, intermediate].
struct GatedMlp {
    Mat gate, up, down;
};

struct AttentionWeights {
    Mat q, k, v, o;
    std::vector<float> q_bias, k_bias, v_bias, o_bias;  // empty: none
    std::vector<float> q_norm, k_norm;                  // Qwen3 / OLMoE
    // Multi-head latent attention.
    Mat q_a, q_b, kv_a, kv_b;
    std::vector<float> q_a_norm, kv_a_norm, q_a_bias, kv_a_bias;
};

struct MoeWeights {
    Mat router;                          // [experts, hidden]
    std::vector<float> correction_bias;  // noaux_tc
    std::vector<GatedMlp> experts;
    GatedMlp shared;  // empty when none
    Mat shared_gate;  // [1, hidden], Qwen2-MoE
};

struct LayerWeights {
    std::vector<float> input_norm, post_norm;
    AttentionWeights attention;
    GatedMlp mlp;  // dense layers
    MoeWeights moe;
};

struct ModelWeights {
    Mat embed, lm_head;
    std::vector<float> final_norm;
    std::vector<LayerWeights> layers;
    // Every whole 2-D tensor loaded as a matrix, by its name in the files (stacked expert
    // tensors are not listed: no one name is one matrix), for adapters that target a module.
    std::vector<std::pair<std::string, Mat>> named;
};

// Calls f(Mat&) on every matrix the forward pass reads (slices of one tensor included).
template <class F>
void for_each_matrix(ModelWeights& w, F&& f) {
    f(w.embed);
    f(w.lm_head);
    auto mlp = [&](GatedMlp& m) {
        f(m.gate);
        f(m.up);
        f(m.down);
    };
    for (LayerWeights& l : w.layers) {
        AttentionWeights& a = l.attention;
        for (Mat* m : {&a.q, &a.k, &a.v, &a.o, &a.q_a, &a.q_b, &a.kv_a, &a.kv_b}) f(*m);
        mlp(l.mlp);
        f(l.moe.router);
        for (GatedMlp& e : l.moe.experts) mlp(e);
        mlp(l.moe.shared);
        f(l.moe.shared_gate);
    }
}

// Finds every tensor the config needs; a missing tensor, a wrong shape or an unsupported
// dtype throws Error naming the file, the tensor and the expected shape.
ModelWeights load_weights(const SafetensorsModel& model, const ModelConfig& config);

// The same checks on a list of tensors (names, dtypes, shapes) that is not a mapped model
// yet, such as the tensors `simplify` is about to write; errors name `where`.
void check_weight_shapes(const std::vector<TensorInfo>& tensors, const std::string& where,
                         const ModelConfig& config);

}  // namespace greenmoe::hf

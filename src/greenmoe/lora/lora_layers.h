// The blocks of a Hugging Face decoder with LoRA adapters, forward (keeping what the backward
// pass needs on a tape) and backward: standard attention (GQA, biases, q/k norms, clipping,
// rope, sliding window), multi-head latent attention, the dense gated MLP and the sparse MoE
// layer with its routing held as the forward pass chose it.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/hf/hf_config.h"
#include "greenmoe/hf/hf_weights.h"
#include "greenmoe/hf/rope.h"
#include "greenmoe/lora/grad_ops.h"
#include "greenmoe/lora/lora_params.h"

namespace greenmoe::lora {

// One layer of the model on a batch of `rows` sequences of `seq_len` positions each (row i is
// position i % seq_len of sequence i / seq_len).
struct LayerContext {
    const hf::ModelConfig& config;
    const hf::LayerWeights& weights;
    const hf::LayerConfig& layer;
    const hf::Rope& rope;
    LoraParams& params;
    double dropout = 0.0;
    uint64_t key = 0;  // this layer's dropout masks
    int64_t rows = 0, seq_len = 0;

    int64_t tokens() const { return rows * seq_len; }
    // The adapted module of weight w (its adapter, if any, and its own dropout masks).
    AdaptedLinear linear(const hf::Mat& w, const std::vector<float>& bias) const;
};

struct AttentionTape {
    // q: q_proj, or q_b_proj under latent attention.
    LinearTape lin_q, lin_k, lin_v, lin_o, lin_q_a, lin_kv_a, lin_kv_b;
    std::vector<float> q_raw, k_raw, q_inv, k_inv;  // before the q/k norms
    std::vector<float> q_pre_clip, k_pre_clip, v_pre_clip;
    std::vector<float> q_a_raw, q_a_inv, q_a_normed;  // latent attention's query path
    std::vector<float> kv_a_raw, c_inv, c, kv;        // latent attention's key/value path
    std::vector<float> q, k, v;                       // what attention read (q, k roped)
    std::vector<float> probs, o;
};

// x [tokens, hidden] (normalized) → out [tokens, hidden]. tape: null when no backward follows.
void attention_forward(const LayerContext& ctx, const float* x, float* out, AttentionTape* tape);
// dx [tokens, hidden] += the input gradient; adapters' gradients accumulate.
void attention_backward(const LayerContext& ctx, const float* x, const float* dout,
                        AttentionTape& tape, float* dx);

struct MlpTape {
    struct Expert {
        std::vector<int64_t> slots;   // token · top_k + k
        std::vector<int64_t> tokens;  // slot / top_k (empty: row i is token i)
        std::vector<float> x, g, u, act, y;
        LinearTape gate, up, down;
    };
    std::vector<float> logits;  // router logits [tokens, experts]
    std::vector<int> chosen;    // [tokens, top_k]
    std::vector<float> weights;
    std::vector<Expert> experts;  // routed experts; experts[0] is the dense MLP's when dense
    Expert shared;
    std::vector<float> shared_gate_logit;
    LinearTape router, shared_gate;
};

// The layer's MLP (dense, or MoE with its shared expert): x [tokens, hidden] → out.
void mlp_forward(const LayerContext& ctx, const float* x, float* out, MlpTape* tape);
void mlp_backward(const LayerContext& ctx, const float* x, const float* dout, MlpTape& tape,
                  float* dx);

}  // namespace greenmoe::lora

// The sparse MLP of a Hugging Face MoE layer: routing (softmax or sigmoid scores, greedy,
// group-limited or noaux_tc selection), the routed experts over their gathered tokens, and
// the shared expert.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/hf/hf_config.h"
#include "greenmoe/hf/hf_weights.h"

namespace greenmoe::hf {

struct Routing {
    int64_t tokens = 0;
    int top_k = 0;
    std::vector<int> experts;    // [tokens, top_k]
    std::vector<float> weights;  // [tokens, top_k]
};

// Chooses top_k experts per token from router logits [n, experts]. `masked` (empty, or one
// flag per expert) removes experts before selection, as if their logits were −∞.
Routing route(const MoeConfig& config, const MoeWeights& w, const float* logits, int64_t n,
              int n_experts, const std::vector<bool>& masked = {});

// x [n, hidden] (normalized) → out [n, hidden].
void moe_block(const ModelConfig& config, const MoeWeights& w, const float* x, int64_t n,
               float* out, const std::vector<bool>& masked = {});

}  // namespace greenmoe::hf

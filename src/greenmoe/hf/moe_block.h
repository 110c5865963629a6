// The sparse MLP of a Hugging Face MoE layer: routing (softmax or sigmoid scores, greedy,
// group-limited or noaux_tc selection), the routed experts over their gathered tokens, and
// the shared expert.
#pragma once

#include <cstdint>
#include <functional>
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

// What one MoE layer computed on a batch of tokens, shown to a MoeObserver (calibration for
// expert pruning). The pointers are valid only during the call.
struct MoeLayerTrace {
    int layer = 0;
    int64_t tokens = 0, hidden = 0;
    int n_experts = 0;
    const float* x = nullptr;       // [tokens, hidden] the block's (normalized) input
    const float* logits = nullptr;  // [tokens, n_experts] router logits, before any mask
    const Routing* routing = nullptr;
    // [tokens · top_k, hidden]: row t·top_k + k is expert routing->experts[t·top_k + k]'s
    // output for token t, before its routing weight.
    const float* expert_out = nullptr;
    const float* out = nullptr;  // [tokens, hidden] the block's output (shared expert included)
    // Runs routed expert e on rows x [m, hidden] → out [m, hidden] (for statistics that need
    // experts on tokens not routed to them).
    std::function<void(int e, const float* x, int64_t m, float* out)> run_expert;
};

// Receives every MoE layer's trace during a forward pass. Null by default: plain inference
// builds no trace.
class MoeObserver {
  public:
    virtual ~MoeObserver() = default;
    virtual void observe(const MoeLayerTrace& trace) = 0;
};

// x [n, hidden] (normalized) → out [n, hidden]. `observer` (optional) sees the layer's trace
// under the index `layer`.
void moe_block(const ModelConfig& config, const MoeWeights& w, const float* x, int64_t n,
               float* out, const std::vector<bool>& masked = {}, MoeObserver* observer = nullptr,
               int layer = 0);

}  // namespace greenmoe::hf

// Mixture of attention heads (MoA, Zhang et al. 2022; docs/moe.md "moa"): the attention
// sub-layer with keys and values shared by all experts, a query map and an output map per
// expert, and olnn routing per token through MoeRouter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "greenmoe/core/aligned_buffer.h"
#include "greenmoe/model/gpt_config.h"
#include "greenmoe/model/moe_router.h"

namespace greenmoe {

// Pointers to one MoA layer's tensors (parameters or gradients), names as in docs/moe.md
// under `transformer.h.{l}.attn.`.
struct MoaTensors {
    float* kv_w = nullptr;      // c_kv.weight [2C, C]: keys are rows [0, C), values [C, 2C)
    float* kv_b = nullptr;      // c_kv.bias [2C]
    float* router_w = nullptr;  // router.weight [E, C]
    float* noise_w = nullptr;   // noise.weight [E, C]
    float* q_w = nullptr;       // q_experts.weight [E, C, C]
    float* q_b = nullptr;       // q_experts.bias [E, C]
    float* o_w = nullptr;       // o_experts.weight [E, C, C]
    float* o_b = nullptr;       // o_experts.bias [E, C]
};

class MoaAttention {
  public:
    // Uses config.n_embd, n_head, n_experts and top_k; every buffer is sized here for
    // max_batch × max_seq tokens.
    MoaAttention(const GptConfig& config, int max_batch, int max_seq);

    // y[B, T, C] = the attention sub-layer's output (before the residual add) from
    // x[B, T, C] (the block's ln_1 output). bias[E] (loss-free balancing) shifts selection
    // only; may be null. rng_key names this forward's noise draws.
    void forward(float* y, const float* x, const MoaTensors& p, int B, int T, bool training,
                 const float* bias, uint64_t rng_key);

    // Accumulates (+=) into dx and g the gradient of Σ dy·y + aux_scale · (weighted
    // auxiliary losses of the last forward). Routing stays as the forward chose it.
    void backward(float* dx, const MoaTensors& g, const float* dy, const float* x,
                  const MoaTensors& p, const MoeAuxWeights& w, float aux_scale);

    double aux_loss(const MoeAuxWeights& w) const { return router_.aux_loss(w); }
    const MoeForwardStats& stats() const { return router_.stats(); }

    // Tests supply the noise draws eps [B·T, E] themselves (null goes back to the
    // generator).
    void set_draws(const float* eps) { router_.set_draws(eps, nullptr, nullptr); }

    // While frozen, forward() keeps the last selections and recomputes only the continuous
    // values (for finite-difference checks).
    void freeze_routing(bool frozen) { router_.freeze(frozen); }

    // Selections of the last forward: [B·T, k] expert ids in choice order.
    int choices_per_token() const { return K_; }
    const std::vector<int>& choice() const { return router_.choice(); }

  private:
    void group_rows(int N);
    void attend_unit(int b, int h);
    void attend_unit_backward(int b, int h);

    int C_, NH_, hs_, E_, K_, max_batch_, max_seq_;
    float scale_;  // 1/√hs
    MoeRouter router_;

    // Per forward (sizes for max_batch × max_seq tokens; a row is one (token, choice)).
    int B_ = 0, T_ = 0;
    std::vector<int> row_of_;         // [N, K] row of each choice in the gathered block
    std::vector<int> row_token_;      // [N·K] token of each row
    std::vector<int> expert_offset_;  // [E + 1] rows of expert e: [offset[e], offset[e+1])
    std::vector<int> fill_;           // [E] scratch
    std::vector<size_t> att_offset_;  // [N·K] where row r's NH probability rows start
    AlignedBuffer kv_;                // [N, 2C]
    AlignedBuffer xg_, q_, z_, out_;  // gathered rows [N·K, C]: x, queries, heads, outputs
    AlignedBuffer att_;               // per row, per head: softmax over its t + 1 keys

    // Backward scratch.
    std::vector<float> dgate_;             // [N, K]
    AlignedBuffer dout_, dz_, dq_, dxg_;   // [N·K, C]
    AlignedBuffer dkv_;                    // [N, 2C]
    AlignedBuffer unit_scratch_;           // per (sequence, head): one token block's rows
    std::vector<const float*> unit_ptrs_;  // per (sequence, head): their vectors
    std::vector<float*> unit_out_ptrs_;    // per (sequence, head): their outputs (z or dq)
};

}  // namespace greenmoe

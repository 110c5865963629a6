// The Mixture-of-Experts MLP of one block (olnn, switch, gshard, condmlp; docs/moe.md):
// routing through MoeRouter, capacity, grouped expert matmuls, and their backward.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "greenmoe/core/aligned_buffer.h"
#include "greenmoe/model/gpt_config.h"
#include "greenmoe/model/moe_router.h"

namespace greenmoe {

MoeKind moe_kind_from_name(const std::string& name);

// Pointers to one MoE layer's tensors inside a flat block (parameters or gradients);
// the ones a variant does not have are null.
struct MoeTensors {
    float* router_w = nullptr;  // [E, C]
    float* noise_w = nullptr;   // [E, C] (olnn)
    float* fc_w = nullptr;      // experts: [E, H, C]; condmlp: [H, C]
    float* fc_b = nullptr;      // experts: [E, H];    condmlp: b_fc [E, H]
    float* proj_w = nullptr;    // experts: [E, C, H]; condmlp: [C, H]
    float* proj_b = nullptr;    // experts: [E, C];    condmlp: b_proj [E, C]
    float* guess_w = nullptr;   // condmlp guesser [E, C]
    float* guess_b = nullptr;   // [E]
};

class MoeMlp {
  public:
    MoeMlp(const GptConfig& config, int max_tokens);

    // y[N, C] from x[N, C]. bias[E] (the loss-free balancing bias) shifts selection only;
    // may be null. rng_key names this forward's random draws (noise, keep, path).
    void forward(float* y, const float* x, const MoeTensors& p, int N, bool training,
                 const float* bias, uint64_t rng_key);

    // Accumulates into dx and g the gradient of Σ dy·y + aux_scale · (weighted auxiliary
    // losses of the last forward). Routing stays as the forward chose it.
    void backward(float* dx, const MoeTensors& g, const float* dy, const float* x,
                  const MoeTensors& p, const MoeAuxWeights& w, float aux_scale);

    // The weighted auxiliary loss of the last forward.
    double aux_loss(const MoeAuxWeights& w) const { return router_.aux_loss(w); }
    const MoeForwardStats& stats() const { return router_.stats(); }

    // Tests supply random draws themselves: eps [N, E], u_keep [N], u_path [N]
    // (null pointers go back to the generator).
    void set_draws(const float* eps, const float* u_keep, const float* u_path) {
        router_.set_draws(eps, u_keep, u_path);
    }

    // Gradient checks hold the discrete routing fixed: while frozen, forward() keeps the
    // last forward's selections, random keeps and capacity decisions and recomputes only
    // the continuous values (logits, probabilities, gate weights, outputs, losses).
    void freeze_routing(bool frozen) { router_.freeze(frozen); }

    // Without limits every choice reaches its expert (see GptModel::set_capacity_limits).
    void set_capacity_limits(bool enabled) { capacity_limits_ = enabled; }

    // Selections of the last forward, for tests: [N, K] expert ids and whether each choice
    // reached an expert (admitted) — -1 / 0 where there is none.
    int choices_per_token() const { return K_; }
    int experts() const { return E_; }
    // The last forward's routed rows, for statistics (the pruning calibration pass):
    // row_of()[n·K + j] is the gathered row of token n's j-th choice (−1: none), expert_rows()
    // those rows' expert outputs [rows, C] before their gate, gates() the weights [N, K] that
    // combine them. condmlp has no per-expert output rows.
    bool has_expert_rows() const { return kind_ != MoeKind::CondMlp; }
    const std::vector<int>& row_of() const { return row_of_; }
    const float* expert_rows() const { return out_.data(); }
    const std::vector<float>& gates() const { return router_.gate(); }
    const std::vector<int>& choice() const { return router_.choice(); }
    const std::vector<uint8_t>& admitted() const { return admitted_; }

  private:
    void assign_capacity(int N, bool training);
    void experts_forward(float* y, const MoeTensors& p, int N);
    void condmlp_forward(float* y, const float* x, const MoeTensors& p, int N);

    MoeKind kind_;
    int C_, H_, E_, K_, max_tokens_;
    float cf_train_, cf_eval_;
    bool capacity_limits_ = true;
    MoeRouter router_;

    // Per forward (sizes for max_tokens).
    int N_ = 0;
    std::vector<uint8_t> admitted_;   // [N, K] after capacity
    std::vector<int> row_of_;         // [N, K] row in the gathered block, -1 if none
    std::vector<int> row_token_;      // [rows]
    std::vector<int> expert_offset_;  // [E + 1]
    std::vector<int> load_, fill_;    // [E] capacity scratch
    AlignedBuffer xg_, hpre_, hact_,
        out_;  // gathered rows: [rows, C], [rows, H], [rows, H], [rows, C]
    AlignedBuffer dout_, dh_act_, dhpre_, dxg_;  // backward scratch
    std::vector<float> dgate_;                   // [N, K]
};

}  // namespace greenmoe

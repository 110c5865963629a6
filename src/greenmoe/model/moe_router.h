// The router shared by greenmoe's MoE layers (docs/moe.md): router logits, olnn's noise, the
// selections and their gate weights, routing statistics, the four auxiliary losses, and the
// backward of all of it into the input and the router's weights.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/core/aligned_buffer.h"

namespace greenmoe {

enum class MoeKind { Olnn, Switch, GShard, CondMlp };

// Weights of the auxiliary losses and the scale they enter the total loss with.
struct MoeAuxWeights {
    float load = 0, importance = 0, z = 0, penalty = 0;
};

// Values of one forward (unweighted auxiliary losses) and its routing statistics.
struct MoeForwardStats {
    double aux_load = 0, aux_importance = 0, aux_z = 0, aux_penalty = 0;
    double entropy = 0;           // mean over tokens of −Σ p log p
    int64_t choices = 0;          // expert choices made (after gshard's random keep)
    int64_t dropped = 0;          // of which refused by capacity
    std::vector<int64_t> counts;  // per expert: choices routed to it, before capacity
};

// Pointers to a router's tensors (parameters or gradients); those a kind does not have are
// null.
struct MoeRouterTensors {
    float* router_w = nullptr;  // [E, C] (olnn, switch, gshard)
    float* noise_w = nullptr;   // [E, C] (olnn)
    float* guess_w = nullptr;   // [E, C] (condmlp's guesser)
    float* guess_b = nullptr;   // [E]
};

// Routes N tokens of width C among E experts, K choices each (olnn: top_k; switch and
// condmlp: 1; gshard: 2). Capacity is the caller's business: the router decides choices and
// gate weights before any capacity limit, which is what the auxiliary losses see.
class MoeRouter {
  public:
    MoeRouter(MoeKind kind, int C, int E, int K, int max_tokens, bool condmlp_eval_sample);

    // Logits, draws, selections, gate weights, counts, entropy and the unweighted auxiliary
    // losses of x[N, C]. bias[E] shifts selection only; may be null.
    void forward(const float* x, const MoeRouterTensors& p, int N, bool training, const float* bias,
                 uint64_t rng_key);

    // Accumulates into dx[N, C] and g the gradient of Σ dgate·gate + aux_scale · (weighted
    // auxiliary losses), where dgate[N, K] is the caller's gradient with respect to the gate
    // weights of the last forward (zero for choices that reached no expert).
    void backward(float* dx, const MoeRouterTensors& g, const float* dgate, const float* x,
                  const MoeRouterTensors& p, const MoeAuxWeights& w, float aux_scale);

    double aux_loss(const MoeAuxWeights& w) const;
    const MoeForwardStats& stats() const { return stats_; }
    // The caller's capacity refused this many choices in the last forward.
    void set_dropped(int64_t dropped) { stats_.dropped = dropped; }

    // Tests supply random draws themselves: eps [N, E], u_keep [N], u_path [N] (null
    // pointers go back to the generator).
    void set_draws(const float* eps, const float* u_keep, const float* u_path);

    // While frozen, forward() keeps the last selections and random keeps and recomputes only
    // the continuous values (logits, probabilities, gate weights, losses).
    void freeze(bool frozen) { frozen_ = frozen; }
    bool frozen() const { return frozen_; }

    int choices_per_token() const { return K_; }
    // [N, K] of the last forward: expert ids in choice order, their gate weights, and
    // whether gshard's random rule kept them (1 for every other kind).
    const std::vector<int>& choice() const { return choice_; }
    const std::vector<float>& gate() const { return gate_; }
    const std::vector<uint8_t>& kept() const { return kept_; }

  private:
    void compute_aux(int N);

    MoeKind kind_;
    int C_, E_, K_, max_tokens_;
    bool condmlp_eval_sample_;
    bool frozen_ = false;

    // Per forward (sizes for max_tokens).
    int N_ = 0;
    bool training_ = false;
    AlignedBuffer h_;     // clean router / guesser logits [N, E]
    AlignedBuffer hn_;    // olnn noise logits x·W_noiseᵀ [N, E]
    AlignedBuffer hsel_;  // logits whose softmax gives the weights (olnn: noisy h') [N, E]
    AlignedBuffer p_;     // softmax(hsel) (condmlp: softmax(g/1.66)) [N, E]
    AlignedBuffer eps_, u_keep_, u_path_;
    const float* eps_override_ = nullptr;
    const float* u_keep_override_ = nullptr;
    const float* u_path_override_ = nullptr;
    std::vector<int> choice_;        // [N, K]
    std::vector<float> gate_;        // [N, K]
    std::vector<uint8_t> kept_;      // [N, K] after gshard's random rule
    std::vector<int> first_counts_;  // tokens whose first choice is i [E]
    MoeForwardStats stats_;

    // Scratch, allocated once.
    std::vector<float> dgate_;                     // [N, K]
    AlignedBuffer dlogits_, dsel_, dp_, q_, dhn_;  // [N, E]
    std::vector<double> P_, imp_, qbar_, dimp_;    // [E]
};

}  // namespace greenmoe

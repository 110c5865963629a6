// The calibration pass of data-driven expert pruning: token shards run through a model while
// every MoE layer's routing and expert outputs are summed into per-expert statistics.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace greenmoe::hf {
class HfModel;
}

namespace greenmoe::moeits {

struct CalibrationOptions {
    std::string data;        // token shards: a file, a folder or a glob (list_token_shards)
    int64_t tokens = 16384;  // the first this many tokens of the shards, in order
    // Tokens per sequence (each starts with an empty cache); 0: 256, or the model's maximum
    // position count when smaller.
    int sequence_length = 0;
    int batch_sequences = 8;  // sequences per forward pass
    // Also gather what NAEE needs: every expert's output on every token (not only its routed
    // ones), reduced to per-token Gram matrices (see LayerCalibration).
    bool naee = false;
};

// What one MoE layer did on the calibration tokens. Routed slots are (token, k) pairs of the
// model's top-k choice; "renormalised gate weight" g̃ is the slot's routing weight divided by
// the sum of the token's top-k weights (REAP's definition; it undoes any routed scaling).
struct LayerCalibration {
    int layer = 0;  // decoder block
    int n_experts = 0, top_k = 0;
    std::vector<int64_t> count;          // [E] routed slots per expert
    std::vector<double> gate_sum;        // [E] Σ g̃ over the expert's slots
    std::vector<double> norm_sum;        // [E] Σ ‖expert output‖₂ over its slots
    std::vector<double> gated_norm_sum;  // [E] Σ g̃ · ‖expert output‖₂ over its slots
    // False where the engine gives routing only (greenmoe's condmlp): the sums above stay 0.
    bool has_outputs = true;

    // NAEE (only with CalibrationOptions::naee). Per token t: y_e(t) = expert e's output on t
    // (every expert), Z(t) = Σ_k w_k y_{e_k}(t) the routed part of the layer's output (the
    // shared expert is the same with or without pruning and cancels in any difference).
    // Kept as sufficient statistics, so that ‖Z(t) − Σ_e a_e y_e(t)‖² of any re-routing a
    // is ‖Z‖² − 2 Σ a_e ⟨Z, y_e⟩ + Σ a_e a_f ⟨y_e, y_f⟩, without storing outputs.
    int64_t tokens = 0;
    std::vector<float> logits;      // [tokens, E] router logits
    std::vector<double> gram;       // [tokens, E, E] ⟨y_e(t), y_f(t)⟩
    std::vector<double> dot;        // [tokens, E] ⟨Z(t), y_e(t)⟩
    std::vector<double> target_sq;  // [tokens] ‖Z(t)‖²
    // The model's own routing of `n` tokens' logits with experts `masked` removed (as the
    // pruned model routes): top-k experts and weights per token, [n, top_k] each.
    std::function<void(const float* logits, int64_t n, const std::vector<bool>& masked,
                       std::vector<int>& experts, std::vector<float>& weights)>
        reroute;
};

struct Calibration {
    std::vector<std::filesystem::path> files;  // the shards read
    int64_t tokens = 0;                        // tokens run through the model
    int sequences = 0, sequence_length = 0;
    std::vector<LayerCalibration> layers;  // one per routed MoE layer, in block order

    // The layer for decoder block `block`; throws Error when it has no statistics.
    const LayerCalibration& layer(int block) const;
};

// The first `max_tokens` token ids of the shards matching `pattern`, in name order. Refuses
// (Error naming the file) a pattern that matches nothing, shards holding no tokens, and any
// id ≥ vocab_size (data tokenized for another vocabulary).
std::vector<int32_t> read_calibration_tokens(const std::string& pattern, int64_t max_tokens,
                                             int64_t vocab_size,
                                             std::vector<std::filesystem::path>* files = nullptr);

// Runs the calibration tokens through a Hugging Face model (its observer set for the pass
// and cleared after) and returns every MoE layer's statistics.
Calibration calibrate(hf::HfModel& model, const CalibrationOptions& options);

// A greenmoe checkpoint (weights file, checkpoint or run folder) through greenmoe's own
// engine in evaluation mode (no capacity limits): routed slots, gate weights and expert
// output norms (condmlp layers, whose experts are biases of one shared MLP, give counts
// only). NAEE's statistics are Hugging Face only: refused here.
Calibration calibrate_greenmoe(const std::filesystem::path& model,
                               const CalibrationOptions& options);

// The same for the model in `model_dir` (a Hugging Face folder).
Calibration calibrate(const std::filesystem::path& model_dir, const CalibrationOptions& options);

}  // namespace greenmoe::moeits

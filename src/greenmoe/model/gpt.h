// The GPT-2 model as nanoGPT builds it: parameters, activations, forward and backward
// over preallocated blocks (no allocation inside a step).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "greenmoe/core/aligned_buffer.h"
#include "greenmoe/model/gpt_config.h"
#include "greenmoe/model/moa_attention.h"
#include "greenmoe/model/moe_mlp.h"
#include "greenmoe/model/param_layout.h"

namespace greenmoe {

// Pointers to one block's tensors inside a flat block (parameters or gradients).
struct BlockTensors {
    float *ln1_w, *ln1_b;
    float *qkv_w, *qkv_b;              // c_attn: [3C, C], [3C]
    float *attn_proj_w, *attn_proj_b;  // attn.c_proj: [C, C], [C]
    float *ln2_w, *ln2_b;
    float *fc_w, *fc_b;            // mlp.c_fc: [4C, C], [4C]
    float *fc_proj_w, *fc_proj_b;  // mlp.c_proj: [C, 4C], [C]
    MoeTensors moe;                // set instead of fc_* in MoE blocks
    MoaTensors moa;                // set instead of qkv_* / attn_proj_* in moa blocks
};

struct GptTensors {
    float* wte;  // [Vp, C], tied with the LM head
    float* wpe;  // [block_size, C]
    std::vector<BlockTensors> blocks;
    float *lnf_w, *lnf_b;
};

// Every parameter tensor of a model with this (finalized) config, in nanoGPT's state_dict
// names and shapes: what GptModel allocates, and what a model file of the config holds.
ParamLayout gpt_param_layout(const GptConfig& config);

class GptModel {
  public:
    // Allocates parameters, gradients and activations for batches up to max_batch ×
    // max_seq (max_seq ≤ block_size). Parameters start at zero; call init_weights.
    GptModel(GptConfig config, int max_batch, int max_seq);

    // nanoGPT initialisation: N(0, 0.02) for matrices and embeddings, the residual
    // projections (attn.c_proj, mlp.c_proj) N(0, 0.02/√(2·n_layer)), zero biases, unit
    // LayerNorm weights; padded vocabulary rows zero. Deterministic in seed.
    void init_weights(uint64_t seed);

    // Runs the model on tokens [B, T] (B ≤ max_batch, T ≤ max_seq). With targets it
    // also computes per-position losses and returns their mean over targets ≥ 0;
    // without (nullptr) it returns NaN and leaves the logits readable.
    float forward(const int* tokens, const int* targets, int B, int T);

    // Gradient of loss_scale × (the mean loss of the last forward), ACCUMULATED into
    // grads(). Must follow a forward with targets. Overwrites the logits. block_done(l),
    // when given, is called as soon as block l's gradients (block_grad_range(l)) are
    // complete, l = n_layer−1 down to 0, then block_done(-1) when the rest (embeddings,
    // final LayerNorm) are: data-parallel training starts summing them over ranks there.
    void backward(float loss_scale = 1.0f, const std::function<void(int block)>& block_done = {});
    // Block l's parameters as a range [first, second) of the flat buffers (padding
    // included); the parameters of no block lie outside all of these ranges.
    std::pair<size_t, size_t> block_grad_range(int block) const;
    void zero_grad() { grads_.zero(); }

    // MoE state. Training mode adds olnn's noise, gshard's random keep and condmlp's
    // sampling, and uses the training capacity factor; evaluation mode does none of it.
    void set_training(bool training) { training_ = training; }
    bool training() const { return training_; }
    // Names the random draws of the next forward (the trainer passes seed, step, micro-step).
    void set_rng_key(uint64_t key) { rng_key_ = key; }
    // Mean over MoE layers of their weighted auxiliary losses in the last forward (0 for
    // dense); backward() includes its gradient.
    double aux_loss() const { return aux_loss_; }
    // The routed layers, in block order (a moa block's attention before its MLP).
    int num_moe_layers() const { return static_cast<int>(moe_slots_.size()); }
    int moe_block(int i) const { return moe_slots_[i].block; }
    bool moe_is_attention(int i) const { return moe_slots_[i].attention; }
    const MoeForwardStats& moe_stats(int i) const;
    // Switch and gshard drop tokens beyond an expert's capacity, a limit set by the whole
    // batch. Scoring and generation turn it off so that a sequence's output does not depend
    // on what else is in the batch (and equals a token-by-token run with a KV cache).
    void set_capacity_limits(bool enabled);
    // Holds every routed layer's discrete routing fixed (gradient checks).
    void freeze_moe_routing(bool frozen);
    // Experts of routed layer i: n_experts for moa attention, the block's (possibly
    // pruned) count for an MLP.
    int moe_experts(int i) const { return moe_slots_[i].experts; }
    // Loss-free balancing bias, one row per routed layer of moe_experts(i) floats laid end
    // to end ([num_moe_layers × E] when no layer is pruned), and the token counts per
    // expert (same layout) accumulated by training forwards since the last update.
    float* moe_bias() { return moe_bias_.data(); }
    const float* moe_bias() const { return moe_bias_.data(); }
    size_t moe_bias_size() const { return moe_row_offset_.back(); }
    // Routed layer i's row of moe_bias() and moe_counts().
    const float* moe_slot_bias(int i) const { return moe_bias_.data() + moe_row_offset_[i]; }
    size_t moe_row_offset(int i) const { return moe_row_offset_[i]; }
    // How checkpoints store the bias: {num_moe_layers, E} when every routed layer has the
    // same count (the layout of unpruned models), else {moe_bias_size()}.
    std::vector<int64_t> moe_bias_shape() const;
    const std::vector<int64_t>& moe_counts() const { return moe_counts_; }
    // For data-parallel training: the counts are summed over ranks before the bias moves.
    std::vector<int64_t>& mutable_moe_counts() { return moe_counts_; }
    // DeepSeek's update from the accumulated counts (b −= γ above 1.2·mean, += γ below
    // 0.8·mean), then clears the counts. gamma = 0 only clears.
    void update_moe_bias(float gamma);

    // The loss-free bias row of block `block`'s routed MLP or attention; null when that
    // sub-layer is not routed.
    const float* moe_bias_row(int block, bool attention) const;

    const GptConfig& config() const { return config_; }
    const ParamLayout& layout() const { return layout_; }
    // The parameters bound per tensor (read-only use: GptInference runs on them).
    const GptTensors& tensors() const { return p_; }
    float* params() { return params_.data(); }
    const float* params() const { return params_.data(); }
    float* grads() { return grads_.data(); }
    const float* grads() const { return grads_.data(); }
    size_t num_parameters() const { return layout_.num_parameters(); }
    int max_batch() const { return max_batch_; }
    int max_seq() const { return max_seq_; }

    // Outputs of the last forward: logits [B, T, Vp], per-position losses [B, T].
    const float* logits() const { return acts_.logits; }
    const float* losses() const { return acts_.losses; }
    int last_batch() const { return B_; }
    int last_seq() const { return T_; }

    // Model FLOPs per token for a training step (forward + backward), as in PaLM/nanoGPT:
    // 6·N_matmul_params + 12·L·C·T for attention.
    double flops_per_token(int T) const;

  private:
    struct Activations {
        float* encoded;  // [B, T, C]
        std::vector<float*> ln1, ln1_mean, ln1_rstd, qkv, atty, att, residual2, ln2, ln2_mean,
            ln2_rstd, fch, fch_gelu, residual3;
        float *lnf, *lnf_mean, *lnf_rstd, *logits, *losses;
        // Backward scratch (reused by every layer).
        float *dresidual, *dln, *dqkv, *datty, *dfch, *dfch_gelu, *datt_scratch;
    };

    GptTensors bind(float* base) const;
    void allocate_activations();
    void check_tokens(const int* tokens, const int* targets, int n) const;

    GptConfig config_;
    int max_batch_, max_seq_;
    ParamLayout layout_;
    AlignedBuffer params_, grads_, act_memory_;
    GptTensors p_, g_;
    Activations acts_{};
    std::vector<std::unique_ptr<MoeMlp>> moe_;        // per block; null for dense MLPs
    std::vector<std::unique_ptr<MoaAttention>> moa_;  // per block; null for mha
    std::vector<GptConfig::RoutedSlot> moe_slots_;
    std::vector<int> mlp_slot_, attn_slot_;  // per block: slot index or -1
    std::vector<size_t> moe_row_offset_{0};  // per slot, plus the total at the end
    AlignedBuffer moe_bias_;
    std::vector<int64_t> moe_counts_;
    MoeAuxWeights aux_weights_;
    bool training_ = true;
    uint64_t rng_key_ = 0;
    double aux_loss_ = 0.0;
    std::vector<int> tokens_, targets_;  // copies of the last forward's inputs
    int B_ = 0, T_ = 0;
    bool have_targets_ = false;
};

}  // namespace greenmoe

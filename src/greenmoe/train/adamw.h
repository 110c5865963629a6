// AdamW over a flat parameter block, with weight decay on 2-D tensors only, plus the
// global gradient-norm clipping that precedes it.
#pragma once

#include <cstdint>

#include "greenmoe/core/aligned_buffer.h"
#include "greenmoe/model/param_layout.h"

namespace greenmoe {

struct AdamWConfig {
    float beta1 = 0.9f;
    float beta2 = 0.95f;
    float eps = 1e-8f;
    float weight_decay = 0.1f;
};

class AdamW {
  public:
    // Moments for the whole flat buffer, or (ZeRO stage 1) for the shard [begin, end) of
    // it only: each rank of a data-parallel job then updates its own shard.
    AdamW(const ParamLayout& layout, AdamWConfig config);
    AdamW(const ParamLayout& layout, AdamWConfig config, size_t begin, size_t end);

    // One update with learning rate lr, as torch.optim.AdamW computes it:
    // p ← p·(1 − lr·wd) − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε), wd only where decayed.
    // params and grads are the whole flat buffers; only the shard's elements change.
    void step(float* params, const float* grads, float lr);

    // The moments of flat elements [shard_begin(), shard_end()).
    float* m() { return m_.data(); }
    float* v() { return v_.data(); }
    const float* m() const { return m_.data(); }
    const float* v() const { return v_.data(); }
    size_t shard_begin() const { return begin_; }
    size_t shard_end() const { return end_; }
    bool sharded() const { return begin_ != 0 || end_ != layout_.total_floats(); }
    int64_t step_count() const { return t_; }
    void set_step_count(int64_t t) { t_ = t; }
    const AdamWConfig& config() const { return config_; }

  private:
    const ParamLayout& layout_;
    AdamWConfig config_;
    size_t begin_, end_;
    AlignedBuffer m_, v_;
    int64_t t_ = 0;
};

// The global L2 norm of the gradient (accumulated in double, fixed order).
double grad_norm(const float* grads, const ParamLayout& layout);

// Scales grads so their norm is at most max_norm, as torch.nn.utils.clip_grad_norm_
// does (coefficient max_norm / (norm + 1e-6), applied only when below 1).
void clip_grads(float* grads, const ParamLayout& layout, double norm, double max_norm);

}  // namespace greenmoe

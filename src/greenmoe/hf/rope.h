// Rotary position embeddings: inverse frequencies for the default, linear, llama3 and YaRN
// variants as transformers computes them, applied in the Llama or the interleaved layout.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/hf/hf_config.h"

namespace greenmoe::hf {

class Rope {
  public:
    explicit Rope(const RopeConfig& config);

    int dim() const { return dim_; }
    const std::vector<double>& inv_freq() const { return inv_freq_; }
    double attention_factor() const { return attention_factor_; }
    // Rotates the first dim() values of `x` for position `pos`.
    void apply(float* x, int64_t pos) const;
    // The transpose of apply (rotation by −angle, times the same factor): carries the
    // gradient of a rotated vector back to the vector.
    void apply_transposed(float* x, int64_t pos) const;

  private:
    // By +angle (direction 1) or −angle (−1), times attention_factor_.
    void rotate(float* x, int64_t pos, double direction) const;
    int dim_ = 0;
    RopeStyle style_ = RopeStyle::Half;
    std::vector<double> inv_freq_;
    double attention_factor_ = 1.0;  // YaRN scales cos and sin
};

}  // namespace greenmoe::hf

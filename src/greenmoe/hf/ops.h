// The model-independent operations of the Hugging Face engine: products with weights in
// their stored dtype, RMSNorm, the silu gate, softmax.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/hf/hf_weights.h"

namespace greenmoe::hf {

// y[n, w.rows] = x[n, w.cols] · wᵀ (+ bias[w.rows] when not empty). F32 weights go to sgemm
// in place; BF16 / F16 weights are converted tile by tile into fp32 scratch.
void linear(const float* x, int64_t n, const Mat& w, const std::vector<float>& bias, float* y);
inline void linear(const float* x, int64_t n, const Mat& w, float* y) {
    linear(x, n, w, {}, y);
}

// In place over n rows of `dim` values with stride `stride`: x ← x / rms(x) · weight.
void rms_norm(float* x, int64_t n, int64_t dim, int64_t stride, const std::vector<float>& weight,
              double eps);

// out[n, inter] = silu(gate) · up, the gated MLP's hidden activation.
void silu_gate(const float* gate, const float* up, int64_t count, float* out);

// out[n, hidden] = down(silu(gate(x)) · up(x)).
void gated_mlp(const GatedMlp& mlp, const float* x, int64_t n, float* out);

// In place, numerically stable.
void softmax(float* x, int64_t n);

}  // namespace greenmoe::hf

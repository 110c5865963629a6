// Layer normalisation over the last dimension (eps 1e-5, as GPT-2) forward and backward.
#pragma once

namespace greenmoe::nn {

inline constexpr float kLayerNormEps = 1e-5f;

// out[N, C] = (inp - mean) * rstd * weight + bias; saves mean[N] and rstd[N] for backward.
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C);

// Accumulates (+=) into dinp[N, C], dweight[C], dbias[C].
// dweight and dbias are summed over rows in a fixed order: the same bits for any number
// of OpenMP threads.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C);

}  // namespace greenmoe::nn

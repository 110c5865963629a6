// Fully connected layer (PyTorch Linear layout) forward and backward through BLAS sgemm.
#pragma once

namespace greenmoe::nn {

// out[N, OC] = inp[N, C] · weight[OC, C]ᵀ + bias[OC]; bias may be null.
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC);

// Accumulates (+=) into every non-null gradient:
//   dinp[N, C]     += dout[N, OC] · weight[OC, C]
//   dweight[OC, C] += dout[N, OC]ᵀ · inp[N, C]
//   dbias[OC]      += Σ_n dout[n, :]
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC);

}  // namespace greenmoe::nn

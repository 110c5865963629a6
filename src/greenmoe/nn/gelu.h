// GELU, tanh approximation (GPT-2's "gelu_new"), forward and backward.
#pragma once

#include <cstddef>

namespace greenmoe::nn {

// out[i] = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); out may alias inp.
void gelu_forward(float* out, const float* inp, size_t n);

// Accumulates (+=) dinp[i] += gelu'(inp[i]) · dout[i]. dinp may alias dout only if
// the caller zeroed nothing else into it (then it is overwritten-accumulated in place).
// Precisely: with dinp == dout the call sets dinp[i] = gelu'(inp[i]) · dout[i] (the
// buffer's old content is dout, so nothing is added to it); otherwise it adds.
void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n);

}  // namespace greenmoe::nn

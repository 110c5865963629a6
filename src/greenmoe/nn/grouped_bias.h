// Bias gradients for per-row bias vectors chosen from a table (condmlp's per-path biases).
#pragma once

namespace greenmoe::nn {

// dbias[group[n], :] += dout[n, :] for n in [0, N); dbias is [G, W], dout [N, W].
// Rows are added in order per column block, so the result does not depend on the
// thread count.
void grouped_bias_backward(float* dbias, const float* dout, const int* group, int N, int W);

}  // namespace greenmoe::nn

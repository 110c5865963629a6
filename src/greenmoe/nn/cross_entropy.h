// Fused softmax + cross-entropy over the (padded) vocabulary, forward and backward.
#pragma once

namespace greenmoe::nn {

// logits is [N, Vp]; only the first V columns are real tokens (the rest is padding and
// is ignored). For each row n with targets[n] ≥ 0: losses[n] = -log softmax(logits[n,
// 0:V])[targets[n]]. Rows with targets[n] < 0 are ignored: loss 0, gradient 0.
// If dlogits is non-null it is written (not accumulated) with
//   dlogits[n, v] = (softmax[n, v] - [v == target]) · dloss   for v < V, 0 for v ≥ V,
// and may alias logits (the usual use: the logits buffer becomes its own gradient).
void cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits,
                                    const int* targets, int N, int V, int Vp, float dloss);

}  // namespace greenmoe::nn

// Token + learned position embedding forward and backward.
#pragma once

namespace greenmoe::nn {

// out[B, T, C] = wte[tokens[b, t], :] + wpe[t, :]. Token ids must be in [0, V) (checked
// by the caller); wte is [Vp, C], wpe is [maxT, C] with T ≤ maxT.
void encoder_forward(float* out, const int* tokens, const float* wte, const float* wpe, int B,
                     int T, int C);

// Accumulates (+=) into dwte rows of the tokens seen and dwpe[0..T). Deterministic: the
// result does not depend on the number of threads.
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int* tokens, int B, int T,
                      int C);

}  // namespace greenmoe::nn

// Causal multi-head self-attention core (after the qkv projection, before c_proj).
#pragma once

namespace greenmoe::nn {

// qkv is [B, T, 3C]: q = [..., 0:C], k = [..., C:2C], v = [..., 2C:3C]; head h uses
// columns [h·hs, (h+1)·hs) of each, hs = C / NH. Scores are scaled by 1/√hs, masked
// causally, softmaxed. Writes out[B, T, C] (heads concatenated) and att[B, NH, T, T]
// (the softmax probabilities, row t valid for columns 0..t; the rest written as 0),
// which backward needs.
void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH);

// Accumulates (+=) into dqkv[B, T, 3C]. scratch must hold B·NH·T·T floats (it holds
// d(scores)); it need not be zeroed.
// Both directions give the same bits for any number of OpenMP threads (each (batch,
// head) is computed whole by one thread).
void attention_backward(float* dqkv, float* scratch, const float* dout, const float* qkv,
                        const float* att, int B, int T, int C, int NH);

}  // namespace greenmoe::nn

// Token + position embedding forward and a backward that is deterministic for any
// number of threads.
#include "greenmoe/nn/encoder.h"

#include <algorithm>
#include <cstddef>

#include "greenmoe/nn/parallel.h"

namespace greenmoe::nn {

namespace {

// Channels per block of the backward: a thread owns whole blocks and walks all tokens in
// order, so every gradient element is summed in the same order whatever the thread count
// (no atomics, no per-thread copies of the table). 16 floats is one cache line.
constexpr int kChannelBlock = 16;

}  // namespace

void encoder_forward(float* out, const int* tokens, const float* wte, const float* wpe, int B,
                     int T, int C) {
    const int rows = B * T;
    const bool parallel = worth_parallel(static_cast<size_t>(rows) * C);
#pragma omp parallel for schedule(static) if (parallel)
    for (int r = 0; r < rows; ++r) {
        const int t = r % T;
        const float* __restrict te = wte + static_cast<size_t>(tokens[r]) * C;
        const float* __restrict pe = wpe + static_cast<size_t>(t) * C;
        float* __restrict y = out + static_cast<size_t>(r) * C;
#pragma omp simd
        for (int c = 0; c < C; ++c) y[c] = te[c] + pe[c];
    }
}

void encoder_backward(float* dwte, float* dwpe, const float* dout, const int* tokens, int B, int T,
                      int C) {
    const int blocks = (C + kChannelBlock - 1) / kChannelBlock;
    const bool parallel = worth_parallel(static_cast<size_t>(B) * T * C);
#pragma omp parallel for schedule(static) if (parallel)
    for (int blk = 0; blk < blocks; ++blk) {
        const int c0 = blk * kChannelBlock;
        const int width = std::min(kChannelBlock, C - c0);
        for (int b = 0; b < B; ++b) {
            for (int t = 0; t < T; ++t) {
                const size_t r = static_cast<size_t>(b) * T + t;
                const float* __restrict dy = dout + r * C + c0;
                float* __restrict dte = dwte + static_cast<size_t>(tokens[r]) * C + c0;
                float* __restrict dpe = dwpe + static_cast<size_t>(t) * C + c0;
#pragma omp simd
                for (int c = 0; c < width; ++c) {
                    dte[c] += dy[c];
                    dpe[c] += dy[c];
                }
            }
        }
    }
}

}  // namespace greenmoe::nn

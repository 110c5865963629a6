// Grouped bias gradients (see grouped_bias.h).
#include "greenmoe/nn/grouped_bias.h"

#include <algorithm>
#include <cstddef>

#include "greenmoe/nn/parallel.h"

namespace greenmoe::nn {

namespace {

// Columns per block: each thread owns whole blocks and walks the rows in order, reading
// each row's block contiguously (the column-at-a-time walk strided through memory).
constexpr int kBlock = 64;

}  // namespace

void grouped_bias_backward(float* dbias, const float* dout, const int* group, int N, int W) {
    const int blocks = (W + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (worth_parallel(static_cast <size_t>(N) * W))
    for (int blk = 0; blk < blocks; ++blk) {
        const int c0 = blk * kBlock;
        const int width = std::min(kBlock, W - c0);
        for (int n = 0; n < N; ++n) {
            const float* src = dout + static_cast<size_t>(n) * W + c0;
            float* dst = dbias + static_cast<size_t>(group[n]) * W + c0;
#pragma omp simd
            for (int c = 0; c < width; ++c) dst[c] += src[c];
        }
    }
}

}  // namespace greenmoe::nn

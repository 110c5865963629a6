// Residual connections: elementwise add, parallel and vectorised.
#include "greenmoe/nn/residual.h"

#include <cstddef>

namespace greenmoe::nn {

namespace {

// Elements per parallel chunk, so small tensors do not pay for a thread team.
constexpr ptrdiff_t kChunk = 1 << 15;

}  // namespace

void residual_forward(float* out, const float* a, const float* b, size_t n) {
    const ptrdiff_t count = static_cast<ptrdiff_t>(n);
#pragma omp parallel for schedule(static) if (count > kChunk)
    for (ptrdiff_t start = 0; start < count; start += kChunk) {
        const ptrdiff_t end = start + kChunk < count ? start + kChunk : count;
#pragma omp simd
        for (ptrdiff_t i = start; i < end; ++i) out[i] = a[i] + b[i];
    }
}

void add_inplace(float* dst, const float* src, size_t n) {
    const ptrdiff_t count = static_cast<ptrdiff_t>(n);
#pragma omp parallel for schedule(static) if (count > kChunk)
    for (ptrdiff_t start = 0; start < count; start += kChunk) {
        const ptrdiff_t end = start + kChunk < count ? start + kChunk : count;
#pragma omp simd
        for (ptrdiff_t i = start; i < end; ++i) dst[i] += src[i];
    }
}

}  // namespace greenmoe::nn

// GELU (tanh approximation) forward and backward, elementwise on 8-wide vectors.
#include "greenmoe/nn/gelu.h"

#include <cstddef>

#include "greenmoe/nn/vec_math.h"

namespace greenmoe::nn {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
// Elements per parallel chunk: a multiple of 8, large enough that each thread streams
// contiguous memory, small enough that short tensors skip the thread team.
constexpr ptrdiff_t kChunk = 1 << 14;

inline Vec8 gelu8(Vec8 x) {
    const Vec8 u = kSqrt2OverPi * (x + kCubic * x * x * x);
    return 0.5f * x * (1.0f + tanh8(u));
}

inline Vec8 gelu_grad8(Vec8 x) {
    const Vec8 u = kSqrt2OverPi * (x + kCubic * x * x * x);
    const Vec8 th = tanh8(u);
    const Vec8 du = kSqrt2OverPi * (1.0f + 3.0f * kCubic * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

// Applies f(i, count) to [start, end) in blocks of 8 plus one partial block.
template <typename F>
inline void for_blocks(ptrdiff_t start, ptrdiff_t end, F f) {
    ptrdiff_t i = start;
    for (; i + 8 <= end; i += 8) f(i, 8);
    if (i < end) f(i, static_cast<int>(end - i));
}

inline Vec8 load_n(const float* p, int n) {
    return n == 8 ? load8(p) : load_partial8(p, n, 0.0f);
}

inline void store_n(float* p, Vec8 v, int n) {
    if (n == 8) {
        store8(p, v);
    } else {
        store_partial8(p, v, n);
    }
}

}  // namespace

void gelu_forward(float* out, const float* inp, size_t n) {
    const ptrdiff_t count = static_cast<ptrdiff_t>(n);
#pragma omp parallel for schedule(static) if (count > kChunk)
    for (ptrdiff_t start = 0; start < count; start += kChunk) {
        const ptrdiff_t end = start + kChunk < count ? start + kChunk : count;
        for_blocks(start, end,
                   [&](ptrdiff_t i, int w) { store_n(out + i, gelu8(load_n(inp + i, w)), w); });
    }
}

void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) {
    const ptrdiff_t count = static_cast<ptrdiff_t>(n);
    // In place (dinp == dout) the buffer holds dout, not a gradient to add to, so the
    // result replaces it; otherwise it accumulates.
    const bool in_place = dinp == dout;
#pragma omp parallel for schedule(static) if (count > kChunk)
    for (ptrdiff_t start = 0; start < count; start += kChunk) {
        const ptrdiff_t end = start + kChunk < count ? start + kChunk : count;
        for_blocks(start, end, [&](ptrdiff_t i, int w) {
            const Vec8 g = gelu_grad8(load_n(inp + i, w)) * load_n(dout + i, w);
            store_n(dinp + i, in_place ? g : load_n(dinp + i, w) + g, w);
        });
    }
}

}  // namespace greenmoe::nn

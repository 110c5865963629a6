// AVX2 weight-row kernels: 8 BF16 / F16 weights widened to fp32 in a register per step,
// several rows and inputs per pass so each weight is loaded once and the FMA chains overlap.
#include "greenmoe/hf/kernels_avx2.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

#include "greenmoe/core/half.h"

#define GREENMOE_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace greenmoe::hf {

namespace {

enum Kind { kF32, kBF16, kF16 };

template <int D>
GREENMOE_AVX2 inline __m256 load8(const std::byte* row, int64_t c) {
    if constexpr (D == kF32) {
        return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + c);
    } else {
        const __m128i h =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + static_cast<size_t>(c) * 2));
        if constexpr (D == kBF16) {
            return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
        } else {
            return _mm256_cvtph_ps(h);
        }
    }
}

template <int D>
inline float load1(const std::byte* row, int64_t c) {
    if constexpr (D == kF32) {
        return reinterpret_cast<const float*>(row)[c];
    } else {
        const uint16_t h = reinterpret_cast<const uint16_t*>(row)[c];
        return D == kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
}

GREENMOE_AVX2 inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// R weight rows from r against N inputs: R·N accumulators, each weight vector used N times.
template <int D, int N, int R>
GREENMOE_AVX2 void dot_block(const float* x, const Mat& w, int64_t r, float* y, int64_t ldy) {
    const int64_t cols = w.cols;
    const size_t row_bytes = static_cast<size_t>(cols) * (D == kF32 ? 4 : 2);
    const std::byte* rows[R];
    for (int j = 0; j < R; ++j) rows[j] = w.data + static_cast<size_t>(r + j) * row_bytes;
    __m256 acc[R][N];
    for (int j = 0; j < R; ++j) {
        for (int i = 0; i < N; ++i) acc[j][i] = _mm256_setzero_ps();
    }
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 wv[R];
        for (int j = 0; j < R; ++j) wv[j] = load8<D>(rows[j], c);
        for (int i = 0; i < N; ++i) {
            const __m256 xv = _mm256_loadu_ps(x + i * cols + c);
            for (int j = 0; j < R; ++j) acc[j][i] = _mm256_fmadd_ps(xv, wv[j], acc[j][i]);
        }
    }
    for (int j = 0; j < R; ++j) {
        for (int i = 0; i < N; ++i) {
            float s = hsum(acc[j][i]);
            for (int64_t t = c; t < cols; ++t) s += x[i * cols + t] * load1<D>(rows[j], t);
            y[i * ldy + r + j] = s;
        }
    }
}

// Enough independent FMA chains (R·N ≥ 4) without spilling the 16 ymm registers.
template <int D, int N>
GREENMOE_AVX2 void dot_range(const float* x, const Mat& w, int64_t r0, int64_t r1, float* y,
                             int64_t ldy) {
    constexpr int R = N <= 2 ? 4 : (N <= 4 ? 2 : 1);
    int64_t r = r0;
    for (; r + R <= r1; r += R) dot_block<D, N, R>(x, w, r, y, ldy);
    for (; r < r1; ++r) dot_block<D, N, 1>(x, w, r, y, ldy);
}

template <int D>
GREENMOE_AVX2 void dot_dispatch(const float* x, int64_t n, const Mat& w, int64_t r0, int64_t r1,
                                float* y, int64_t ldy) {
    switch (n) {
        case 1:
            return dot_range<D, 1>(x, w, r0, r1, y, ldy);
        case 2:
            return dot_range<D, 2>(x, w, r0, r1, y, ldy);
        case 3:
            return dot_range<D, 3>(x, w, r0, r1, y, ldy);
        case 4:
            return dot_range<D, 4>(x, w, r0, r1, y, ldy);
        case 5:
            return dot_range<D, 5>(x, w, r0, r1, y, ldy);
        case 6:
            return dot_range<D, 6>(x, w, r0, r1, y, ldy);
        case 7:
            return dot_range<D, 7>(x, w, r0, r1, y, ldy);
        default:
            return dot_range<D, 8>(x, w, r0, r1, y, ldy);
    }
}

template <int D>
GREENMOE_AVX2 void convert_flat(const std::byte* src, int64_t count, float* out) {
    int64_t c = 0;
    for (; c + 8 <= count; c += 8) _mm256_storeu_ps(out + c, load8<D>(src, c));
    for (; c < count; ++c) out[c] = load1<D>(src, c);
}

}  // namespace

GREENMOE_AVX2 void dot_panel_avx2(const float* x, int64_t n, const Mat& panel, float* y,
                                  int64_t ldy) {
    const int64_t cols = panel.cols;
    int64_t i = 0;
    if (panel.rows == 4) {
        // 3 inputs × 4 rows: 12 accumulators, the 4 panel rows (L1) read once per 3 inputs.
        for (; i + 3 <= n; i += 3) dot_block<kF32, 3, 4>(x + i * cols, panel, 0, y + i * ldy, ldy);
        if (n - i == 2) dot_block<kF32, 2, 4>(x + i * cols, panel, 0, y + i * ldy, ldy);
        if (n - i == 1) dot_block<kF32, 1, 4>(x + i * cols, panel, 0, y + i * ldy, ldy);
        return;
    }
    for (; i < n; i += std::min<int64_t>(8, n - i)) {
        dot_dispatch<kF32>(x + i * cols, std::min<int64_t>(8, n - i), panel, 0, panel.rows,
                           y + i * ldy, ldy);
    }
}

GREENMOE_AVX2 void convert_rows_avx2(const Mat& w, int64_t r0, int64_t m, float* out) {
    const std::byte* src = w.data + static_cast<size_t>(r0 * w.cols) * 2;
    if (w.dtype == DType::BF16) {
        convert_flat<kBF16>(src, m * w.cols, out);
    } else {
        convert_flat<kF16>(src, m * w.cols, out);
    }
}

GREENMOE_AVX2 void dot_rows_avx2(const float* x, int64_t n, const Mat& w, int64_t r0, int64_t r1,
                                 float* y, int64_t ldy) {
    if (n <= 0) return;
    if (w.dtype == DType::BF16) return dot_dispatch<kBF16>(x, n, w, r0, r1, y, ldy);
    if (w.dtype == DType::F16) return dot_dispatch<kF16>(x, n, w, r0, r1, y, ldy);
    dot_dispatch<kF32>(x, n, w, r0, r1, y, ldy);
}

}  // namespace greenmoe::hf

#endif

// Run-time dispatch and the portable path of the weight-row kernels (see kernels.h).
#include "greenmoe/hf/kernels.h"

#include <cstring>

#include "greenmoe/core/half.h"
#include "greenmoe/hf/kernels_avx2.h"

namespace greenmoe::hf {

namespace {

void convert_rows_portable(const Mat& w, int64_t r0, int64_t m, float* out) {
    for (int64_t r = 0; r < m; ++r) w.read_row(r0 + r, out + r * w.cols);
}

float weight_at(const Mat& w, int64_t r, int64_t c) {
    const size_t at = static_cast<size_t>(r * w.cols + c);
    if (w.dtype == DType::F32) return reinterpret_cast<const float*>(w.data)[at];
    const uint16_t h = reinterpret_cast<const uint16_t*>(w.data)[at];
    return w.dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

void dot_rows_portable(const float* x, int64_t n, const Mat& w, int64_t r0, int64_t r1, float* y,
                       int64_t ldy) {
    const int64_t cols = w.cols;
    for (int64_t r = r0; r < r1; ++r) {
        for (int64_t i = 0; i < n; ++i) {
            const float* xi = x + i * cols;
            // Eight partial sums: independent chains the compiler can vectorize.
            float acc[8] = {};
            int64_t c = 0;
            for (; c + 8 <= cols; c += 8) {
                for (int k = 0; k < 8; ++k) acc[k] += xi[c + k] * weight_at(w, r, c + k);
            }
            float sum =
                ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            for (; c < cols; ++c) sum += xi[c] * weight_at(w, r, c);
            y[i * ldy + r] = sum;
        }
    }
}

}  // namespace

bool kernel_path_supported(KernelPath path) {
    switch (path) {
        case KernelPath::Portable:
            return true;
        case KernelPath::Avx2:
#if defined(__x86_64__) && defined(__GNUC__)
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("f16c");
#else
            return false;
#endif
    }
    return false;
}

KernelPath best_kernel_path() {
    static const KernelPath best =
        kernel_path_supported(KernelPath::Avx2) ? KernelPath::Avx2 : KernelPath::Portable;
    return best;
}

const char* kernel_path_name(KernelPath path) {
    return path == KernelPath::Avx2 ? "avx2+fma+f16c" : "portable";
}

void convert_rows(const Mat& w, int64_t r0, int64_t m, float* out, KernelPath path) {
    if (w.dtype == DType::F32) {
        std::memcpy(out, w.data + static_cast<size_t>(r0 * w.cols) * sizeof(float),
                    static_cast<size_t>(m * w.cols) * sizeof(float));
        return;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    if (path == KernelPath::Avx2) return convert_rows_avx2(w, r0, m, out);
#endif
    convert_rows_portable(w, r0, m, out);
}

void dot_rows(const float* x, int64_t n, const Mat& w, int64_t r0, int64_t r1, float* y,
              int64_t ldy, KernelPath path) {
    for (int64_t i0 = 0; i0 < n; i0 += kDotMaxInputs) {
        const int64_t k = n - i0 < kDotMaxInputs ? n - i0 : kDotMaxInputs;
        const float* xi = x + i0 * w.cols;
        float* yi = y + i0 * ldy;
#if defined(__x86_64__) && defined(__GNUC__)
        if (path == KernelPath::Avx2) {
            dot_rows_avx2(xi, k, w, r0, r1, yi, ldy);
            continue;
        }
#endif
        dot_rows_portable(xi, k, w, r0, r1, yi, ldy);
    }
}

void dot_panel(const float* x, int64_t n, const Mat& panel, float* y, int64_t ldy,
               KernelPath path) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (path == KernelPath::Avx2 && panel.dtype == DType::F32) {
        return dot_panel_avx2(x, n, panel, y, ldy);
    }
#endif
    dot_rows(x, n, panel, 0, panel.rows, y, ldy, path);
}

}  // namespace greenmoe::hf

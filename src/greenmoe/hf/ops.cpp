// The Hugging Face engine's operations (see ops.h).
#include "greenmoe/hf/ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "greenmoe/hf/kernels.h"

namespace greenmoe::hf {

namespace {

// Rows of a converted weight tile: about 1 MiB of fp32, a few tiles per matrix.
int64_t tile_rows(int64_t cols) {
    return std::max<int64_t>(1, (int64_t{1} << 18) / cols);
}

// Up to this many input rows, BF16 / F16 weights are read row by row (each converted once,
// rows spread over threads) instead of through converted tiles and sgemm: decoding reads
// every weight once and should cost no more than that.
constexpr int64_t kRowwiseMaxInputs = 8;

// Rows are handed to threads in blocks, a multiple of the kernel's row step.
constexpr int64_t kRowBlock = 16;

void linear_rowwise(const float* x, int64_t n, const Mat& w, float* y) {
    const int64_t rows = w.rows, blocks = (rows + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static) if (rows * w.cols >= (int64_t{1} << 15))
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t r0 = b * kRowBlock;
        dot_rows(x, n, w, r0, std::min(rows, r0 + kRowBlock), y, rows);
    }
}

// Up to this many inputs (an expert's share of a prefill), BF16 / F16 weights go through
// 4-row fp32 panels converted once and multiplied with every input while in L1, rather than
// converted tiles and sgemm, whose packing reads each weight a second time for few rows.
constexpr int64_t kPanelMaxInputs = 96;

void linear_panels(const float* x, int64_t n, const Mat& w, float* y) {
    const int64_t rows = w.rows, cols = w.cols, panels = (rows + 3) / 4;
#pragma omp parallel if (rows * cols >= (int64_t{1} << 15))
    {
        std::vector<float> panel(static_cast<size_t>(4 * cols));
#pragma omp for schedule(static)
        for (int64_t p = 0; p < panels; ++p) {
            const int64_t r0 = p * 4, m = std::min<int64_t>(4, rows - r0);
            convert_rows(w, r0, m, panel.data());
            const Mat f32{reinterpret_cast<const std::byte*>(panel.data()), DType::F32, m, cols};
            dot_panel(x, n, f32, y + r0, rows);
        }
    }
}

}  // namespace

void linear(const float* x, int64_t n, const Mat& w, const std::vector<float>& bias, float* y) {
    if (n <= 0 || w.rows <= 0) return;
    const int64_t rows = w.rows, cols = w.cols;
    if (w.dtype == DType::F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n),
                    static_cast<int>(rows), static_cast<int>(cols), 1.0f, x, static_cast<int>(cols),
                    reinterpret_cast<const float*>(w.data), static_cast<int>(cols), 0.0f, y,
                    static_cast<int>(rows));
    } else if (n <= kRowwiseMaxInputs) {
        linear_rowwise(x, n, w, y);
    } else if (n <= kPanelMaxInputs && best_kernel_path() == KernelPath::Avx2) {
        linear_panels(x, n, w, y);
    } else {
        const int64_t step = std::min(rows, tile_rows(cols));
        std::vector<float> tile(static_cast<size_t>(step * cols));
        for (int64_t r0 = 0; r0 < rows; r0 += step) {
            const int64_t m = std::min(step, rows - r0);
#pragma omp parallel for schedule(static) if (m * cols >= (int64_t{1} << 14))
            for (int64_t r = 0; r < m; r += kRowBlock)
                convert_rows(w, r0 + r, std::min(kRowBlock, m - r), tile.data() + r * cols);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n),
                        static_cast<int>(m), static_cast<int>(cols), 1.0f, x,
                        static_cast<int>(cols), tile.data(), static_cast<int>(cols), 0.0f, y + r0,
                        static_cast<int>(rows));
        }
    }
    if (!bias.empty()) {
        for (int64_t i = 0; i < n; ++i) {
            float* row = y + i * rows;
            for (int64_t r = 0; r < rows; ++r) row[r] += bias[static_cast<size_t>(r)];
        }
    }
}

void rms_norm(float* x, int64_t n, int64_t dim, int64_t stride, const std::vector<float>& weight,
              double eps) {
    for (int64_t i = 0; i < n; ++i) {
        float* row = x + i * stride;
        double ss = 0.0;
        for (int64_t j = 0; j < dim; ++j) ss += double(row[j]) * row[j];
        const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
        for (int64_t j = 0; j < dim; ++j) row[j] = row[j] * inv * weight[static_cast<size_t>(j)];
    }
}

void silu_gate(const float* gate, const float* up, int64_t count, float* out) {
    for (int64_t i = 0; i < count; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

void gated_mlp(const GatedMlp& mlp, const float* x, int64_t n, float* out) {
    const int64_t inter = mlp.gate.rows;
    std::vector<float> g(static_cast<size_t>(n * inter)), u(g.size());
    linear(x, n, mlp.gate, g.data());
    linear(x, n, mlp.up, u.data());
    silu_gate(g.data(), u.data(), n * inter, g.data());
    linear(g.data(), n, mlp.down, out);
}

void softmax(float* x, int64_t n) {
    if (n <= 0) return;
    const float top = *std::max_element(x, x + n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - top);
        sum += x[i];
    }
    const auto inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace greenmoe::hf

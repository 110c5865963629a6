// The weight-row kernels and linear() on every dtype and kernel path against a plain
// double-precision reference, on shapes with odd tails.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "greenmoe/core/half.h"
#include "greenmoe/hf/kernels.h"
#include "greenmoe/hf/ops.h"

namespace greenmoe::hf {
namespace {

// Weights of one dtype, stored as the file would hold them.
struct Weights {
    std::vector<uint16_t> half;
    std::vector<float> full;
    Mat mat;
};

Weights make_weights(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    Weights w;
    const auto count = static_cast<size_t>(rows * cols);
    w.full.resize(count);
    for (float& v : w.full) v = dist(rng);
    if (dtype == DType::BF16 || dtype == DType::F16) {
        w.half.resize(count);
        for (size_t i = 0; i < count; ++i) {
            w.half[i] = dtype == DType::BF16 ? f32_to_bf16(w.full[i]) : f32_to_f16(w.full[i]);
        }
        w.mat.data = reinterpret_cast<const std::byte*>(w.half.data());
    } else {
        w.mat.data = reinterpret_cast<const std::byte*>(w.full.data());
    }
    w.mat.dtype = dtype;
    w.mat.rows = rows;
    w.mat.cols = cols;
    return w;
}

std::vector<float> make_inputs(int64_t n, int64_t cols, std::mt19937& rng) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n * cols));
    for (float& v : x) v = dist(rng);
    return x;
}

// Checks y [n, rows] against Σ x·w in double, to 1e-5 of Σ |x·w| (fp32 accumulation).
void expect_product(const std::vector<float>& x, int64_t n, const Mat& w, const float* y) {
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t r = 0; r < w.rows; ++r) {
        w.read_row(r, row.data());
        for (int64_t i = 0; i < n; ++i) {
            double sum = 0.0, magnitude = 0.0;
            for (int64_t c = 0; c < w.cols; ++c) {
                const double p = double(x[static_cast<size_t>(i * w.cols + c)]) * row[c];
                sum += p;
                magnitude += std::abs(p);
            }
            ASSERT_NEAR(y[i * w.rows + r], sum, 1e-5 * magnitude + 1e-30)
                << "row " << r << " input " << i << " of [" << w.rows << ", " << w.cols << "]";
        }
    }
}

const DType kDtypes[] = {DType::BF16, DType::F16, DType::F32};
const KernelPath kPaths[] = {KernelPath::Portable, KernelPath::Avx2};

TEST(HfKernels, ConvertRowsIsExact) {
    std::mt19937 rng(1);
    for (DType dtype : kDtypes) {
        const Weights w = make_weights(dtype, 13, 37, rng);
        for (KernelPath path : kPaths) {
            if (!kernel_path_supported(path)) continue;
            std::vector<float> out(static_cast<size_t>(5 * 37)), expected(out.size());
            convert_rows(w.mat, 7, 5, out.data(), path);
            for (int64_t r = 0; r < 5; ++r) w.mat.read_row(7 + r, expected.data() + r * 37);
            EXPECT_EQ(out, expected) << dtype_name(dtype) << " " << kernel_path_name(path);
        }
    }
}

TEST(HfKernels, DotRowsMatchReferenceOnOddShapes) {
    std::mt19937 rng(2);
    const int64_t shapes[][2] = {{1, 1}, {3, 7}, {5, 8}, {17, 9}, {29, 131}, {64, 1000}};
    for (DType dtype : kDtypes) {
        for (const auto& shape : shapes) {
            const Weights w = make_weights(dtype, shape[0], shape[1], rng);
            for (int64_t n = 1; n <= 11; ++n) {
                const auto x = make_inputs(n, shape[1], rng);
                for (KernelPath path : kPaths) {
                    if (!kernel_path_supported(path)) continue;
                    SCOPED_TRACE(std::string(kernel_path_name(path)) + " " + dtype_name(dtype) +
                                 " n=" + std::to_string(n));
                    std::vector<float> y(static_cast<size_t>(n * shape[0]), NAN);
                    dot_rows(x.data(), n, w.mat, 0, w.mat.rows, y.data(), w.mat.rows, path);
                    expect_product(x, n, w.mat, y.data());
                }
            }
        }
    }
}

TEST(HfKernels, DotRowsWritesOnlyItsRange) {
    std::mt19937 rng(3);
    const Weights w = make_weights(DType::BF16, 23, 19, rng);
    const auto x = make_inputs(3, 19, rng);
    for (KernelPath path : kPaths) {
        if (!kernel_path_supported(path)) continue;
        std::vector<float> y(static_cast<size_t>(3 * 23), -7.0f);
        dot_rows(x.data(), 3, w.mat, 5, 18, y.data(), 23, path);
        for (int64_t i = 0; i < 3; ++i) {
            for (int64_t r = 0; r < 23; ++r) {
                if (r < 5 || r >= 18) {
                    EXPECT_EQ(y[static_cast<size_t>(i * 23 + r)], -7.0f);
                }
            }
        }
    }
}

// Panels of 1 to 4 fp32 rows against any number of inputs (3 × 4 blocks and their tails).
TEST(HfKernels, DotPanelMatchesReference) {
    std::mt19937 rng(5);
    for (int64_t rows = 1; rows <= 4; ++rows) {
        for (int64_t cols : {1, 8, 37, 200}) {
            const Weights w = make_weights(DType::F32, rows, cols, rng);
            for (int64_t n : {1, 2, 3, 4, 5, 7, 12, 31}) {
                const auto x = make_inputs(n, cols, rng);
                for (KernelPath path : kPaths) {
                    if (!kernel_path_supported(path)) continue;
                    SCOPED_TRACE(std::string(kernel_path_name(path)) +
                                 " rows=" + std::to_string(rows) + " n=" + std::to_string(n));
                    std::vector<float> y(static_cast<size_t>(n * rows), NAN);
                    dot_panel(x.data(), n, w.mat, y.data(), rows, path);
                    expect_product(x, n, w.mat, y.data());
                }
            }
        }
    }
}

// linear() takes the row kernel for few inputs, fp32 panels for an expert's share of a
// prefill, and converted tiles with sgemm for more.
TEST(HfKernels, LinearMatchesReferenceForFewAndManyRows) {
    std::mt19937 rng(4);
    for (DType dtype : kDtypes) {
        const Weights w = make_weights(dtype, 301, 77, rng);
        for (int64_t n : {1, 4, 8, 9, 33, 96, 97, 130}) {
            const auto x = make_inputs(n, 77, rng);
            std::vector<float> y(static_cast<size_t>(n * 301));
            linear(x.data(), n, w.mat, y.data());
            SCOPED_TRACE(std::string(dtype_name(dtype)) + " n=" + std::to_string(n));
            expect_product(x, n, w.mat, y.data());
        }
    }
}

}  // namespace
}  // namespace greenmoe::hf

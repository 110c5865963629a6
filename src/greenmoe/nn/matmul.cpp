// Fully connected layer forward and backward: the products go to OpenBLAS sgemm.
#include "greenmoe/nn/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <cstddef>

#include "greenmoe/nn/parallel.h"

namespace greenmoe::nn {

namespace {

// Channels per block of the bias-gradient reduction: each thread owns whole blocks and
// sums them over all rows in row order, so the result is the same for any thread count.
constexpr int kBiasBlock = 64;

}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    const bool parallel = worth_parallel(static_cast<size_t>(N) * OC);
    if (bias != nullptr) {
#pragma omp parallel for schedule(static) if (parallel)
        for (int n = 0; n < N; ++n) std::copy(bias, bias + OC, out + static_cast<size_t>(n) * OC);
    } else if (C <= 0) {
        std::fill(out, out + static_cast<size_t>(N) * OC, 0.0f);
    }
    if (C <= 0) return;
    // Starting from the bias rows (beta = 1) saves a separate pass that adds it after.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C,
                bias != nullptr ? 1.0f : 0.0f, out, OC);
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (dinp != nullptr && C > 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C,
                    1.0f, dinp, C);
    }
    if (dweight != nullptr && C > 0) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
                    dweight, C);
    }
    if (dbias != nullptr) {
        const int blocks = (OC + kBiasBlock - 1) / kBiasBlock;
        const bool parallel = worth_parallel(static_cast<size_t>(N) * OC);
#pragma omp parallel for schedule(static) if (parallel)
        for (int blk = 0; blk < blocks; ++blk) {
            const int c0 = blk * kBiasBlock;
            const int width = std::min(kBiasBlock, OC - c0);
            double acc[kBiasBlock] = {};
            for (int n = 0; n < N; ++n) {
                const float* row = dout + static_cast<size_t>(n) * OC + c0;
#pragma omp simd
                for (int c = 0; c < width; ++c) acc[c] += row[c];
            }
            for (int c = 0; c < width; ++c) dbias[c0 + c] += static_cast<float>(acc[c]);
        }
    }
}

}  // namespace greenmoe::nn

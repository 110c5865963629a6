// Layer normalisation forward and backward, parallel over rows (and over channel blocks
// for the parameter gradients, so they do not depend on the thread count).
#include "greenmoe/nn/layernorm.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "greenmoe/nn/parallel.h"

namespace greenmoe::nn {

namespace {

constexpr int kChannelBlock = 64;

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C) {
    const bool parallel = worth_parallel(static_cast<size_t>(N) * C);
#pragma omp parallel for schedule(static) if (parallel)
    for (int n = 0; n < N; ++n) {
        const float* x = inp + static_cast<size_t>(n) * C;
        float* y = out + static_cast<size_t>(n) * C;
        // Two passes in double: the one-pass E[x²] - E[x]² form cancels badly when the
        // mean is large next to the spread, and double costs nothing here (memory-bound).
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < C; ++c) sum += x[c];
        const double m = sum / C;
        double sq = 0.0;
#pragma omp simd reduction(+ : sq)
        for (int c = 0; c < C; ++c) {
            const double d = x[c] - m;
            sq += d * d;
        }
        const double s = 1.0 / std::sqrt(sq / C + static_cast<double>(kLayerNormEps));
        const float mf = static_cast<float>(m);
        const float sf = static_cast<float>(s);
#pragma omp simd
        for (int c = 0; c < C; ++c) y[c] = (x[c] - mf) * sf * weight[c] + bias[c];
        mean[n] = mf;
        rstd[n] = sf;
    }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C) {
    const bool parallel = worth_parallel(static_cast<size_t>(N) * C);
#pragma omp parallel for schedule(static) if (parallel)
    for (int n = 0; n < N; ++n) {
        const float* x = inp + static_cast<size_t>(n) * C;
        const float* dy = dout + static_cast<size_t>(n) * C;
        float* dx = dinp + static_cast<size_t>(n) * C;
        const float m = mean[n];
        const float s = rstd[n];
        double sum_dnorm = 0.0;
        double sum_dnorm_xhat = 0.0;
#pragma omp simd reduction(+ : sum_dnorm, sum_dnorm_xhat)
        for (int c = 0; c < C; ++c) {
            const float xhat = (x[c] - m) * s;
            const float dnorm = dy[c] * weight[c];
            sum_dnorm += dnorm;
            sum_dnorm_xhat += dnorm * xhat;
        }
        const float a = static_cast<float>(sum_dnorm / C);
        const float b = static_cast<float>(sum_dnorm_xhat / C);
#pragma omp simd
        for (int c = 0; c < C; ++c) {
            const float xhat = (x[c] - m) * s;
            dx[c] += (dy[c] * weight[c] - a - xhat * b) * s;
        }
    }

    const int blocks = (C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for schedule(static) if (parallel)
    for (int blk = 0; blk < blocks; ++blk) {
        const int c0 = blk * kChannelBlock;
        const int width = std::min(kChannelBlock, C - c0);
        double acc_w[kChannelBlock] = {};
        double acc_b[kChannelBlock] = {};
        for (int n = 0; n < N; ++n) {
            const float* x = inp + static_cast<size_t>(n) * C + c0;
            const float* dy = dout + static_cast<size_t>(n) * C + c0;
            const float m = mean[n];
            const float s = rstd[n];
#pragma omp simd
            for (int c = 0; c < width; ++c) {
                acc_w[c] += dy[c] * ((x[c] - m) * s);
                acc_b[c] += dy[c];
            }
        }
        for (int c = 0; c < width; ++c) {
            dweight[c0 + c] += static_cast<float>(acc_w[c]);
            dbias[c0 + c] += static_cast<float>(acc_b[c]);
        }
    }
}

}  // namespace greenmoe::nn

// Fused softmax + cross-entropy over the padded vocabulary: per row, one pass for the
// max, one that writes exp() and sums it, one that scales; the row (200 KB at 50k
// tokens) stays in L2 between them, so memory sees one read and one write.
#include "greenmoe/nn/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "greenmoe/core/error.h"
#include "greenmoe/nn/parallel.h"
#include "greenmoe/nn/vec_math.h"

namespace greenmoe::nn {

namespace {

float row_max(const float* x, int n) {
    const int body = n / 8 * 8;
    Vec8 m = load_partial8(x + body, n - body, x[0]);
    for (int j = 0; j < body; j += 8) m = max8(m, load8(x + j));
    return hmax8(m);
}

// Σ exp(x - mx), also storing the terms to e when it is non-null (it may alias x). Each
// term is ≤ 1 and there are ~50k: float lanes over the whole row would lose ~1e-5 of the
// loss, so lanes sum blocks of kBlock vectors in float and the block sums go to double.
double sum_exp(float* e, const float* x, int n, float mx) {
    constexpr int kBlock = 32;
    const int body = n / 8 * 8;
    const int tail = n - body;
    const Vec8 vmx = splat8(mx);
    Vec4d lo{}, hi{};
    for (int j0 = 0; j0 < body; j0 += 8 * kBlock) {
        const int j1 = std::min(body, j0 + 8 * kBlock);
        Vec8 block{};
        for (int j = j0; j < j1; j += 8) {
            const Vec8 v = exp8(load8(x + j) - vmx);
            if (e != nullptr) store8(e + j, v);
            block += v;
        }
        accumulate_double(lo, hi, block);
    }
    if (tail > 0) {
        Vec8 v = exp8(load_partial8(x + body, tail, mx) - vmx);
        for (int i = tail; i < 8; ++i) v[i] = 0.0f;
        if (e != nullptr) store_partial8(e + body, v, tail);
        accumulate_double(lo, hi, v);
    }
    return hsum4d(lo) + hsum4d(hi);
}

}  // namespace

void cross_entropy_forward_backward(float* losses, float* dlogits, const float* logits,
                                    const int* targets, int N, int V, int Vp, float dloss) {
    check(V > 0 && V <= Vp, "cross_entropy: vocabulary size {} must be in [1, padded size {}]", V,
          Vp);
    // Checked up front: an exception cannot leave the parallel region below.
    for (int n = 0; n < N; ++n) {
        check(targets[n] < V, "cross_entropy: targets[{}] = {} is outside the vocabulary [0, {})",
              n, targets[n], V);
    }
    const bool parallel = worth_parallel(static_cast<size_t>(N) * Vp);
#pragma omp parallel for schedule(static) if (parallel)
    for (int n = 0; n < N; ++n) {
        const float* x = logits + static_cast<size_t>(n) * Vp;
        float* dx = dlogits != nullptr ? dlogits + static_cast<size_t>(n) * Vp : nullptr;
        const int target = targets[n];
        if (target < 0) {
            if (losses != nullptr) losses[n] = 0.0f;
            if (dx != nullptr) std::fill(dx, dx + Vp, 0.0f);
            continue;
        }
        const float mx = row_max(x, V);
        // Read before the row may be overwritten by its own gradient.
        const float target_logit = x[target];
        const double sum = sum_exp(dx, x, V, mx);
        if (losses != nullptr) {
            losses[n] =
                static_cast<float>(std::log(sum) + (mx - static_cast<double>(target_logit)));
        }
        if (dx != nullptr) {
            const float scale = static_cast<float>(dloss / sum);
#pragma omp simd
            for (int v = 0; v < V; ++v) dx[v] *= scale;
            dx[target] -= dloss;
            std::fill(dx + V, dx + Vp, 0.0f);
        }
    }
}

}  // namespace greenmoe::nn

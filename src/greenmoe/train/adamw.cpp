// AdamW and gradient clipping (see adamw.h).
#include "greenmoe/train/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "greenmoe/core/error.h"

namespace greenmoe {

AdamW::AdamW(const ParamLayout& layout, AdamWConfig config)
    : AdamW(layout, config, 0, layout.total_floats()) {}

AdamW::AdamW(const ParamLayout& layout, AdamWConfig config, size_t begin, size_t end)
    : layout_(layout), config_(config), begin_(begin), end_(end), m_(end - begin), v_(end - begin) {
    check(begin <= end && end <= layout.total_floats(),
          "optimizer shard [{}, {}) is outside the {} parameters", begin, end,
          layout.total_floats());
}

void AdamW::step(float* params, const float* grads, float lr) {
    ++t_;
    const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
    const double bc1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(t_));
    const double bc2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(t_));
    const float step_size = static_cast<float>(lr / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    for (const ParamSpec& s : layout_.specs()) {
        // This tensor's part of the shard.
        const size_t first = std::max(s.offset, begin_);
        const size_t last = std::min(s.offset + s.numel, end_);
        if (first >= last) continue;
        const float decay = s.weight_decay ? 1.0f - lr * config_.weight_decay : 1.0f;
        float* p = params + first;
        const float* g = grads + first;
        float* m = m_.data() + (first - begin_);
        float* v = v_.data() + (first - begin_);
        const long n = static_cast<long>(last - first);
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; ++i) {
            m[i] = b1 * m[i] + (1.0f - b1) * g[i];
            v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
            const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
            p[i] = p[i] * decay - step_size * m[i] / denom;
        }
    }
}

double grad_norm(const float* grads, const ParamLayout& layout) {
    // Per-tensor sums in parallel, then a fixed-order total: the result does not depend
    // on the thread count beyond each tensor's own static partition.
    const auto& specs = layout.specs();
    std::vector<double> partial(specs.size(), 0.0);
    for (size_t t = 0; t < specs.size(); ++t) {
        const float* g = grads + specs[t].offset;
        const long n = static_cast<long>(specs[t].numel);
        double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
        for (long i = 0; i < n; ++i) sum += static_cast<double>(g[i]) * g[i];
        partial[t] = sum;
    }
    double total = 0.0;
    for (double p : partial) total += p;
    return std::sqrt(total);
}

void clip_grads(float* grads, const ParamLayout& layout, double norm, double max_norm) {
    if (max_norm <= 0) return;
    const double coef = max_norm / (norm + 1e-6);
    if (coef >= 1.0) return;
    const float c = static_cast<float>(coef);
    for (const ParamSpec& s : layout.specs()) {
        float* g = grads + s.offset;
        const long n = static_cast<long>(s.numel);
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; ++i) g[i] *= c;
    }
}

}  // namespace greenmoe

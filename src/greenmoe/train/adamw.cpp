// AdamW and gradient clipping (see adamw.h).
#include "greenmoe/train/adamw.h"

#include <cmath>
#include <vector>

namespace greenmoe {

AdamW::AdamW(const ParamLayout& layout, AdamWConfig config)
    : layout_(layout), config_(config), m_(layout.total_floats()), v_(layout.total_floats()) {}

void AdamW::step(float* params, const float* grads, float lr) {
    ++t_;
    const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
    const double bc1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(t_));
    const double bc2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(t_));
    const float step_size = static_cast<float>(lr / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    for (const ParamSpec& s : layout_.specs()) {
        const float decay = s.weight_decay ? 1.0f - lr * config_.weight_decay : 1.0f;
        float* p = params + s.offset;
        const float* g = grads + s.offset;
        float* m = m_.data() + s.offset;
        float* v = v_.data() + s.offset;
        const long n = static_cast<long>(s.numel);
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

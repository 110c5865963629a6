// Choosing the next token (see generate.h).
#include "greenmoe/hf/generate.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>

namespace greenmoe::hf {

int32_t pick_token(const float* logits, int vocab, const GenerateOptions& o, double u) {
    if (o.temperature <= 0.0) {
        return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
    }
    std::vector<int32_t> order(static_cast<size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    size_t keep = order.size();
    if (o.top_k > 0) keep = std::min(keep, static_cast<size_t>(o.top_k));
    std::vector<double> p(keep);
    const double top = logits[order[0]];
    double sum = 0.0;
    for (size_t i = 0; i < keep; ++i) {
        p[i] = std::exp((logits[order[i]] - top) / o.temperature);
        sum += p[i];
    }
    if (o.top_p < 1.0) {
        double mass = 0.0;
        size_t n = 0;
        while (n < keep && mass < o.top_p * sum) mass += p[n++];
        keep = std::max<size_t>(n, 1);
        sum = std::accumulate(p.begin(), p.begin() + static_cast<ptrdiff_t>(keep), 0.0);
    }
    double target = u * sum;
    for (size_t i = 0; i < keep; ++i) {
        target -= p[i];
        if (target < 0.0) return order[i];
    }
    return order[keep - 1];
}

}  // namespace greenmoe::hf

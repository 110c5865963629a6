// NAEE's layer-wise subset search (see naee.h).
#include "greenmoe/moeits/naee.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "greenmoe/core/error.h"

namespace greenmoe::moeits {

namespace {

void check_stats(const LayerCalibration& s, int keep) {
    const auto E = static_cast<size_t>(s.n_experts);
    check(s.tokens > 0 && s.gram.size() == size_t(s.tokens) * E * E && s.reroute,
          "layer {}: NAEE needs the calibration pass's reconstruction statistics (run it with "
          "naee on)",
          s.layer);
    check(keep >= 1 && keep <= s.n_experts, "layer {}: NAEE cannot keep {} of {} experts", s.layer,
          keep, s.n_experts);
}

}  // namespace

double naee_reconstruction_error(const LayerCalibration& s, const std::vector<int>& kept) {
    check_stats(s, static_cast<int>(kept.size()));
    const int E = s.n_experts;
    std::vector<bool> masked(static_cast<size_t>(E), true);
    for (const int e : kept) masked[static_cast<size_t>(e)] = false;
    std::vector<int> experts;
    std::vector<float> weights;
    s.reroute(s.logits.data(), s.tokens, masked, experts, weights);
    const auto K = experts.size() / static_cast<size_t>(s.tokens);
    double total = 0.0;
    for (int64_t t = 0; t < s.tokens; ++t) {
        const auto row = static_cast<size_t>(t);
        const double* g = s.gram.data() + row * size_t(E) * size_t(E);
        const double* zd = s.dot.data() + row * size_t(E);
        double err = s.target_sq[row];
        for (size_t k = 0; k < K; ++k) {
            const auto e = static_cast<size_t>(experts[row * K + k]);
            const double a = weights[row * K + k];
            err -= 2.0 * a * zd[e];
            for (size_t j = 0; j < K; ++j) {
                const auto f = static_cast<size_t>(experts[row * K + j]);
                err += a * double(weights[row * K + j]) * g[e * size_t(E) + f];
            }
        }
        // Rounding can leave a tiny negative remainder where the reconstruction is exact.
        total += std::max(err, 0.0);
    }
    return std::sqrt(total);
}

int64_t binomial(int n, int k) {
    if (k < 0 || k > n) return 0;
    k = std::min(k, n - k);
    int64_t c = 1;
    for (int i = 1; i <= k; ++i) {
        // c·(n−k+i)/i is exact at every step; stop before it overflows.
        if (c > std::numeric_limits<int64_t>::max() / (n - k + i)) {
            return std::numeric_limits<int64_t>::max();
        }
        c = c * (n - k + i) / i;
    }
    return c;
}

NaeeChoice naee_exhaustive(const LayerCalibration& s, int keep) {
    check_stats(s, keep);
    NaeeChoice best;
    best.exhaustive = true;
    best.error = std::numeric_limits<double>::infinity();
    std::vector<int> subset(static_cast<size_t>(keep));
    for (int i = 0; i < keep; ++i) subset[static_cast<size_t>(i)] = i;
    const int E = s.n_experts;
    while (true) {
        const double err = naee_reconstruction_error(s, subset);
        ++best.subsets_evaluated;
        if (err < best.error) {
            best.error = err;
            best.kept = subset;
        }
        // Next combination in lexicographic order (itertools.combinations' order).
        int i = keep - 1;
        while (i >= 0 && subset[static_cast<size_t>(i)] == E - keep + i) --i;
        if (i < 0) break;
        ++subset[static_cast<size_t>(i)];
        for (int j = i + 1; j < keep; ++j)
            subset[static_cast<size_t>(j)] = subset[static_cast<size_t>(j - 1)] + 1;
    }
    return best;
}

NaeeChoice naee_greedy(const LayerCalibration& s, int keep) {
    check_stats(s, keep);
    NaeeChoice result;
    std::vector<int> current(static_cast<size_t>(s.n_experts));
    for (int e = 0; e < s.n_experts; ++e) current[static_cast<size_t>(e)] = e;
    result.error = 0.0;
    while (static_cast<int>(current.size()) > keep) {
        double best = std::numeric_limits<double>::infinity();
        size_t drop = 0;
        for (size_t i = 0; i < current.size(); ++i) {
            std::vector<int> trial = current;
            trial.erase(trial.begin() + static_cast<long>(i));
            const double err = naee_reconstruction_error(s, trial);
            ++result.subsets_evaluated;
            if (err < best) {
                best = err;
                drop = i;
            }
        }
        current.erase(current.begin() + static_cast<long>(drop));
        result.error = best;
    }
    result.kept = current;
    if (static_cast<int>(current.size()) == s.n_experts) {
        result.error = naee_reconstruction_error(s, current);
    }
    return result;
}

NaeeChoice naee_search(const LayerCalibration& s, int keep, int64_t max_subsets) {
    return binomial(s.n_experts, keep) <= max_subsets ? naee_exhaustive(s, keep)
                                                      : naee_greedy(s, keep);
}

}  // namespace greenmoe::moeits

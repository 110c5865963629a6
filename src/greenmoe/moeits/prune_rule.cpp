// The MoEITS per-layer pruning rule (spec §3) and the factor searches of its target modes.
#include "greenmoe/moeits/prune_rule.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "greenmoe/core/error.h"
#include "greenmoe/moeits/histogram.h"

// th = mean + IQR·factor and numpy's lerp are two rounded operations in the reference;
// a fused multiply-add could move th across an entry of M.
#pragma GCC optimize("fp-contract=off")

namespace greenmoe::moeits {

namespace {

void check_matrix(const std::vector<double>& m, int n_experts, const char* what) {
    check(n_experts >= 1, "{}: n_experts must be at least 1, got {}", what, n_experts);
    const auto e = static_cast<size_t>(n_experts);
    check(m.size() == e * e, "{}: similarity matrix has {} entries, expected {}×{} = {}", what,
          m.size(), e, e, e * e);
    for (size_t i = 0; i < m.size(); ++i) {
        check(std::isfinite(m[i]), "{}: similarity matrix entry ({}, {}) is {}", what, i / e, i % e,
              m[i]);
    }
}

struct LayerStats {
    double mean = 0.0;
    double iqr = 0.0;
};

LayerStats layer_stats(const std::vector<double>& m) {
    return {numpy_mean(m), iqr_linear(m)};
}

// The reference's loop, unbounded: order[r] is the position (original index) removed at
// step r and maxima[r] the maximum of M before it, for r = 0..E−1 (the last step sees the
// 1×1 matrix [0]). `stop(r, max)` ends it early.
struct Removal {
    std::vector<int> order;
    std::vector<double> maxima;
};

template <typename Stop>
Removal run_removal(const std::vector<double>& m, int n_experts, Stop stop) {
    Removal out;
    std::vector<int> remaining(static_cast<size_t>(n_experts));
    for (int i = 0; i < n_experts; ++i) remaining[static_cast<size_t>(i)] = i;
    std::vector<double> cur = m;
    size_t k = static_cast<size_t>(n_experts);
    std::vector<double> next;
    while (k > 0) {
        size_t arg = 0;
        for (size_t i = 1; i < k * k; ++i) {
            if (cur[i] > cur[arg]) arg = i;
        }
        const double max_value = cur[arg];
        if (stop(out.order.size(), max_value)) break;
        const size_t a = arg / k;
        const size_t b = arg % k;
        const double mean_a = numpy_pairwise_sum(cur.data() + a * k, k) / static_cast<double>(k);
        const double mean_b = numpy_pairwise_sum(cur.data() + b * k, k) / static_cast<double>(k);
        const size_t drop = mean_a > mean_b ? a : b;
        out.order.push_back(remaining[drop]);
        out.maxima.push_back(max_value);
        remaining.erase(remaining.begin() + static_cast<std::ptrdiff_t>(drop));
        next.clear();
        for (size_t i = 0; i < k; ++i) {
            if (i == drop) continue;
            for (size_t j = 0; j < k; ++j) {
                if (j != drop) next.push_back(cur[i * k + j]);
            }
        }
        cur.swap(next);
        --k;
    }
    return out;
}

std::vector<int> kept_after(int n_experts, const std::vector<int>& removed) {
    std::vector<char> gone(static_cast<size_t>(n_experts), 0);
    for (int r : removed) gone[static_cast<size_t>(r)] = 1;
    std::vector<int> kept;
    for (int i = 0; i < n_experts; ++i) {
        if (!gone[static_cast<size_t>(i)]) kept.push_back(i);
    }
    return kept;
}

// Removals the rule makes with threshold th, from the factor-independent sequence.
int removals_at(const std::vector<double>& maxima, double th, int max_removals) {
    int r = 0;
    while (r < static_cast<int>(maxima.size()) && maxima[static_cast<size_t>(r)] > th) ++r;
    return std::min(r, max_removals);
}

}  // namespace

double percentile_linear(std::vector<double> values, double q) {
    check(!values.empty(), "percentile of an empty array");
    check(q >= 0.0 && q <= 100.0, "percentile must be in [0, 100], got {}", q);
    const PercentilePosition p = percentile_position(values.size(), q);
    // Both neighbours are order statistics; nth_element twice is numpy's partition.
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(p.lo),
                     values.end());
    const double lo = values[p.lo];
    double hi = lo;
    if (p.hi != p.lo) {
        hi =
            *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(p.lo) + 1, values.end());
    }
    return numpy_lerp(lo, hi, p.gamma);
}

double iqr_linear(const std::vector<double>& values) {
    return percentile_linear(values, 75.0) - percentile_linear(values, 25.0);
}

double numpy_mean(const std::vector<double>& values) {
    check(!values.empty(), "mean of an empty array");
    return numpy_pairwise_sum(values.data(), values.size()) / static_cast<double>(values.size());
}

PruneResult prune_layer(const std::vector<double>& M, int n_experts, double factor, int min_keep) {
    check_matrix(M, n_experts, "prune_layer");
    check(min_keep >= 0, "prune_layer: min_keep must be >= 0, got {}", min_keep);
    check(std::isfinite(factor), "prune_layer: factor must be finite, got {}", factor);
    const LayerStats s = layer_stats(M);
    PruneResult result;
    result.factor = factor;
    result.threshold = s.mean + s.iqr * factor;
    const double th = result.threshold;
    const Removal removal = run_removal(M, n_experts, [&](size_t removed, double max_value) {
        if (!(max_value > th)) return true;
        if (n_experts - static_cast<int>(removed) <= min_keep) {
            result.stopped_at_min_keep = true;
            return true;
        }
        return false;
    });
    result.kept = kept_after(n_experts, removal.order);
    return result;
}

PruneResult prune_layer_to_keep(const std::vector<double>& M, int n_experts, int keep,
                                int min_keep) {
    check_matrix(M, n_experts, "prune_layer_to_keep");
    check(keep >= 1, "prune_layer_to_keep: keep must be at least 1, got {}", keep);
    check(min_keep >= 0, "prune_layer_to_keep: min_keep must be >= 0, got {}", min_keep);
    const LayerStats s = layer_stats(M);
    if (s.iqr == 0.0) return prune_layer(M, n_experts, 0.0, min_keep);

    const Removal full = run_removal(M, n_experts, [](size_t, double) { return false; });
    const std::vector<double>& m = full.maxima;
    const int e = n_experts;
    const int max_removals = std::max(0, e - min_keep);  // the guard's limit
    const int wanted = std::clamp(e - std::max(keep, min_keep), 0, max_removals);

    // A threshold stops the rule after exactly r removals iff m[r-1] > th >= m[r]; r = 0
    // needs th >= m[0]; the guard makes max_removals reachable with any th < m[r-1].
    const auto reachable = [&](int r) {
        if (r == 0 || r == max_removals) return true;
        return m[static_cast<size_t>(r) - 1] > m[static_cast<size_t>(r)];
    };
    int best = 0;
    for (int r = 0; r <= max_removals; ++r) {
        if (!reachable(r)) continue;
        if (std::abs(r - wanted) < std::abs(best - wanted)) best = r;
    }
    const double inf = std::numeric_limits<double>::infinity();
    const double hi = best == 0 ? inf : m[static_cast<size_t>(best) - 1];
    double lo = -inf;
    if (best < e &&
        (best == 0 || m[static_cast<size_t>(best) - 1] > m[static_cast<size_t>(best)])) {
        lo = m[static_cast<size_t>(best)];
    }
    double th = 0.0;
    if (hi == inf) {
        th = lo + 1.0;
    } else if (lo == -inf) {
        th = hi - 1.0;
    } else {
        th = lo + (hi - lo) / 2.0;
    }
    return prune_layer(M, n_experts, (th - s.mean) / s.iqr, min_keep);
}

std::vector<int> removed_per_layer(const std::vector<std::vector<double>>& layer_M,
                                   const std::vector<int>& n_experts, double factor, int min_keep) {
    check(layer_M.size() == n_experts.size(), "removed_per_layer: {} matrices but {} expert counts",
          layer_M.size(), n_experts.size());
    std::vector<int> removed;
    for (size_t l = 0; l < layer_M.size(); ++l) {
        const PruneResult r = prune_layer(layer_M[l], n_experts[l], factor, min_keep);
        removed.push_back(n_experts[l] - static_cast<int>(r.kept.size()));
    }
    return removed;
}

double factor_for_reduction(const std::vector<std::vector<double>>& layer_M,
                            const std::vector<int>& n_experts, double target_fraction,
                            int min_keep) {
    check(layer_M.size() == n_experts.size(),
          "factor_for_reduction: {} matrices but {} expert counts", layer_M.size(),
          n_experts.size());
    check(!layer_M.empty(), "factor_for_reduction: no MoE layers");
    check(target_fraction >= 0.0 && target_fraction <= 1.0,
          "factor_for_reduction: target fraction must be in [0, 1], got {}", target_fraction);
    check(min_keep >= 0, "factor_for_reduction: min_keep must be >= 0, got {}", min_keep);

    struct Layer {
        LayerStats stats;
        std::vector<double> maxima;
        int max_removals = 0;
    };
    std::vector<Layer> layers;
    std::set<double> breakpoints;
    long total = 0;
    for (size_t l = 0; l < layer_M.size(); ++l) {
        check_matrix(layer_M[l], n_experts[l], "factor_for_reduction");
        Layer layer;
        layer.stats = layer_stats(layer_M[l]);
        layer.maxima =
            run_removal(layer_M[l], n_experts[l], [](size_t, double) { return false; }).maxima;
        layer.max_removals = std::max(0, n_experts[l] - min_keep);
        if (layer.stats.iqr != 0.0) {
            for (double v : layer.maxima) {
                breakpoints.insert((v - layer.stats.mean) / layer.stats.iqr);
            }
        }
        total += n_experts[l];
        layers.push_back(std::move(layer));
    }
    const double wanted_real = target_fraction * static_cast<double>(total);
    const auto wanted =
        static_cast<long>(std::ceil(wanted_real - 1e-9 * std::max(1.0, wanted_real)));

    const auto removed_at = [&](double factor) {
        long removed = 0;
        for (const Layer& layer : layers) {
            const double th = layer.stats.mean + layer.stats.iqr * factor;
            removed += removals_at(layer.maxima, th, layer.max_removals);
        }
        return removed;
    };
    if (breakpoints.empty()) return 0.0;  // every layer has IQR 0: the factor changes nothing

    // Between consecutive breakpoints the count is constant; test one point per interval,
    // from the least pruning (above every breakpoint) down.
    std::vector<double> points(breakpoints.begin(), breakpoints.end());
    std::vector<double> candidates;
    candidates.push_back(points.back() + 1.0);
    for (size_t i = points.size() - 1; i > 0; --i) {
        candidates.push_back(points[i - 1] + (points[i] - points[i - 1]) / 2.0);
    }
    candidates.push_back(points.front() - 1.0);
    for (double f : candidates) {
        if (removed_at(f) >= wanted) return f;
    }
    return candidates.back();
}

}  // namespace greenmoe::moeits

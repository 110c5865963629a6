// The MoEITS per-layer pruning rule (spec §3) and the factor searches of its target modes.
#pragma once

#include <vector>

namespace greenmoe::moeits {

struct PruneResult {
    std::vector<int> kept;             // original expert indices, ascending
    double threshold = 0.0;            // th = mean(M) + factor·IQR(M)
    bool stopped_at_min_keep = false;  // the rule wanted to remove more but min_keep stopped it
    double factor = 0.0;               // the factor the rule ran with
};

// numpy.percentile(values, q) with the default 'linear' method, q in [0, 100].
double percentile_linear(std::vector<double> values, double q);

// scipy.stats.iqr(values): percentile 75 minus percentile 25, linear interpolation.
double iqr_linear(const std::vector<double>& values);

// np.mean(values) bit for bit (numpy's pairwise summation, then / n).
double numpy_mean(const std::vector<double>& values);

// Spec §3 on one layer's M (E×E row-major, finite). th = mean(M) + IQR(M)·factor over all E²
// entries; while max(current M) > th, the first argmax pair (a, b) in row-major order loses
// the one whose current row mean is higher (b on a tie), as the reference computes it with
// numpy. Never keeps fewer than min_keep experts (pass the model's top-k): when the rule
// would go below, it stops there and sets stopped_at_min_keep. min_keep = 0 reproduces the
// reference exactly, which with a negative threshold removes every expert.
// Throws Error on a wrong size, a non-finite entry or min_keep < 0.
PruneResult prune_layer(const std::vector<double>& M, int n_experts, double factor, int min_keep);

// Target mode "keep N experts per layer", searched per layer (the rule is per layer).
// The order in which the rule removes experts does not depend on the factor, only where it
// stops: it stops before removal r exactly when the maximum of M at that step, m_r, is
// <= th, and m_0 >= m_1 >= … since each M is a submatrix of the one before. So we compute
// that sequence once, pick the stop closest to E − max(keep, min_keep) removals that a
// threshold can produce (ties in m make some stops unreachable; on equal distance we keep
// more), take th halfway between the two bounding maxima and return
// prune_layer(M, E, (th − mean)/IQR, min_keep) — the result *is* the rule at result.factor.
// When IQR(M) = 0 the factor has no effect and the rule runs with factor 0.
// Throws Error when keep < 1.
PruneResult prune_layer_to_keep(const std::vector<double>& M, int n_experts, int keep,
                                int min_keep);

// Target mode "remove X % of expert parameters": one factor for all layers. Every expert is
// taken to be the same size (true of the supported architectures; dense and shared experts
// are not in layer_M), so the removed share is removed experts / Σ n_experts. Returns the
// largest factor (least pruning) whose removed share is >= target_fraction (within 1e-9,
// so 0.3 of 10 experts means 3): the midpoint of the factor interval where the count first
// reaches the target, so rounding in mean + factor·IQR cannot cross a step. When even the
// most pruning factor (min_keep permitting) falls short, returns a factor that prunes the
// most. target_fraction must be in [0, 1].
double factor_for_reduction(const std::vector<std::vector<double>>& layer_M,
                            const std::vector<int>& n_experts, double target_fraction,
                            int min_keep);

// How many experts the rule removes from each layer at `factor` (min_keep applied).
std::vector<int> removed_per_layer(const std::vector<std::vector<double>>& layer_M,
                                   const std::vector<int>& n_experts, double factor, int min_keep);

}  // namespace greenmoe::moeits

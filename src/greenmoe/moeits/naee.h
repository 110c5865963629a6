// NAEE (Lu et al. 2024, "Not All Experts are Equal"): per layer, the experts to keep that
// minimise the reconstruction error of the layer's output on calibration tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/moeits/calibration.h"

namespace greenmoe::moeits {

// ‖Z − Z_S‖_F over the calibration tokens: Z the layer's routed output, Z_S the output when
// only `kept` experts remain and the router chooses its top-k among them (the pruned model).
// Needs the NAEE statistics (CalibrationOptions::naee); kept ascending.
double naee_reconstruction_error(const LayerCalibration& layer, const std::vector<int>& kept);

struct NaeeChoice {
    std::vector<int> kept;  // ascending
    double error = 0.0;     // naee_reconstruction_error of kept
    bool exhaustive = false;
    int64_t subsets_evaluated = 0;
};

// Every subset of `keep` experts, in lexicographic order; the first of least error.
NaeeChoice naee_exhaustive(const LayerCalibration& layer, int keep);

// Backward elimination: from all experts, repeatedly remove the one whose removal leaves
// the least error (the lower index on ties) until `keep` remain.
NaeeChoice naee_greedy(const LayerCalibration& layer, int keep);

// Exhaustive where C(E, keep) ≤ max_subsets (Mixtral's 8 choose 4 is 70), greedy beyond.
inline constexpr int64_t kNaeeMaxSubsets = 20000;
NaeeChoice naee_search(const LayerCalibration& layer, int keep,
                       int64_t max_subsets = kNaeeMaxSubsets);

// C(n, k), saturating at INT64_MAX.
int64_t binomial(int n, int k);

}  // namespace greenmoe::moeits

// Summaries of repeated timings: mean, percentiles and the coefficient of variation.
#pragma once

#include <optional>
#include <vector>

namespace greenmoe {

// Arithmetic mean; NaN for no values.
double mean_of(const std::vector<double>& values);

// The q-quantile (q in [0, 1]) with linear interpolation between the two nearest ranks, as
// numpy.percentile's default ("linear") computes it, so p50/p90 match what ML.ENERGY's Python
// reports for the same latencies. NaN for no values.
double percentile_of(std::vector<double> values, double q);

// Sample standard deviation (n − 1) over the mean: how much repeats of one measurement
// disagree. nullopt for fewer than two values or a zero mean (no spread can be judged).
std::optional<double> coefficient_of_variation(const std::vector<double>& values);

}  // namespace greenmoe

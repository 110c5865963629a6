// CLI11 validators for numeric options whose messages print the real bounds: "--top-k:
// must be ≥ 1, got 0" rather than CLI11's "not in range 2.2e-308 to 1.8e+308".
#pragma once

#include <CLI/CLI.hpp>

namespace greenmoe {

// A whole number ≥ 1: token counts, items, k.
CLI::Validator positive_count();
// v ≥ min.
CLI::Validator at_least(double min);
// v > min, e.g. above(0) for a size or a power.
CLI::Validator above(double min);
// v in [lo, hi], or (lo, hi] when lo_open.
CLI::Validator in_range(double lo, double hi, bool lo_open = false);

}  // namespace greenmoe

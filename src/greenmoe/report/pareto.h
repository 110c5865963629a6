// Pareto fronts of two figures: the points no other point beats in both.
#pragma once

#include <cstddef>
#include <vector>

namespace greenmoe::report {

enum class Better { Lower, Higher };

// Indices (ascending) of the points that no other point dominates. A point dominates another
// when it is at least as good in both figures and better in one; identical points do not
// dominate each other, so both stay on the front. Points with a NaN or infinite figure are
// left out. Sorting makes it O(n log n).
std::vector<size_t> pareto_front(const std::vector<double>& x, Better x_better,
                                 const std::vector<double>& y, Better y_better);

}  // namespace greenmoe::report

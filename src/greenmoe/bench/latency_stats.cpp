// Mean, percentile and coefficient of variation (see latency_stats.h).
#include "greenmoe/bench/latency_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace greenmoe {

double mean_of(const std::vector<double>& values) {
    if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
    double sum = 0.0;
    for (const double v : values) sum += v;
    return sum / double(values.size());
}

double percentile_of(std::vector<double> values, double q) {
    if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
    std::sort(values.begin(), values.end());
    const double rank = std::clamp(q, 0.0, 1.0) * double(values.size() - 1);
    const auto below = static_cast<size_t>(std::floor(rank));
    const size_t above = std::min(below + 1, values.size() - 1);
    const double t = rank - double(below);
    return values[below] + t * (values[above] - values[below]);
}

std::optional<double> coefficient_of_variation(const std::vector<double>& values) {
    if (values.size() < 2) return std::nullopt;
    const double m = mean_of(values);
    if (m == 0.0) return std::nullopt;
    double ss = 0.0;
    for (const double v : values) ss += (v - m) * (v - m);
    return std::sqrt(ss / double(values.size() - 1)) / std::abs(m);
}

}  // namespace greenmoe

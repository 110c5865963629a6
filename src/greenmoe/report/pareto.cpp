// Pareto fronts by a sort and one sweep (see pareto.h).
#include "greenmoe/report/pareto.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace greenmoe::report {

std::vector<size_t> pareto_front(const std::vector<double>& x, Better x_better,
                                 const std::vector<double>& y, Better y_better) {
    // Both figures turned into "lower is better".
    auto gx = [&](size_t i) { return x_better == Better::Lower ? x[i] : -x[i]; };
    auto gy = [&](size_t i) { return y_better == Better::Lower ? y[i] : -y[i]; };
    std::vector<size_t> order;
    for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
        if (std::isfinite(x[i]) && std::isfinite(y[i])) order.push_back(i);
    }
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return gx(a) != gx(b) ? gx(a) < gx(b) : gy(a) < gy(b); });
    // Points of one x in turn: the group's best y is on the front when it beats every y of a
    // better x; the group's other points are beaten by it.
    std::vector<size_t> front;
    double best_y = std::numeric_limits<double>::infinity();
    for (size_t start = 0; start < order.size();) {
        size_t end = start;
        while (end < order.size() && gx(order[end]) == gx(order[start])) ++end;
        const double group_best = gy(order[start]);
        if (group_best < best_y) {
            for (size_t k = start; k < end && gy(order[k]) == group_best; ++k)
                front.push_back(order[k]);
            best_y = group_best;
        }
        start = end;
    }
    std::sort(front.begin(), front.end());
    return front;
}

}  // namespace greenmoe::report

// Finite-difference gradient checker shared by the op tests and the whole-model tests.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "greenmoe/core/rng.h"

namespace greenmoe::testing {

struct GradCheckOptions {
    // Central-difference step for coordinate i: rel_step · max(|x_i|, step_floor). The
    // numeric derivative carries the loss's rounding noise δ/h (with fp32 forwards δ is
    // ~1e-7 times the size of the terms of the loss) plus a curvature error ~h²·L'''/6:
    // at 1e-3 the noise alone reaches 1e-3 relative on the op tests, at 1e-2 both stay
    // near 1e-5, hence this default.
    double rel_step = 1e-2;
    double step_floor = 1.0;
    // Coordinate i passes when |analytic - numeric| ≤ rel_tol · max(|analytic|, |numeric|,
    // floor), floor = max(abs_floor, floor_fraction · max_j |analytic_j|). The floor keeps
    // coordinates whose gradient is tiny next to the rest from failing on the float
    // rounding noise of the forward pass, while staying proportional to the gradient's
    // own scale (so it works for losses of any magnitude).
    double rel_tol = 1e-3;
    double abs_floor = 1e-6;
    double floor_fraction = 0.1;
    // 0 checks every coordinate; otherwise this many distinct coordinates drawn with a
    // generator seeded by seed (the same ones every run).
    size_t max_coords = 0;
    uint64_t seed = 1;
};

struct GradCheckResult {
    size_t checked = 0;
    size_t failures = 0;
    // The coordinate with the largest error relative to what it was allowed.
    size_t worst_index = 0;
    double worst_analytic = 0.0;
    double worst_numeric = 0.0;
    double worst_ratio = 0.0;  // |analytic - numeric| / allowed; > 1 means failed
    double floor = 0.0;

    bool ok() const { return failures == 0; }

    std::string describe(const std::string& name) const {
        return fmt::format(
            "gradient of {}: {} of {} checked coordinates out of tolerance; worst is [{}]: "
            "analytic {:.9g}, numeric {:.9g}, |diff| {:.3g} = {:.3g}x the allowed error "
            "(floor {:.3g})",
            name, failures, checked, worst_index, worst_analytic, worst_numeric,
            std::abs(worst_analytic - worst_numeric), worst_ratio, floor);
    }
};

// Compares analytic[0..n) with central differences of loss() with respect to x[0..n).
// loss() must read x (it is perturbed in place, one coordinate at a time, and restored to
// its exact original bits) and should return the loss in double; it must be
// deterministic. The numeric derivative divides by the step actually taken after
// rounding x ± h to float, so the representation of the step adds no error.
inline GradCheckResult check_gradient(float* x, size_t n, const float* analytic,
                                      const std::function<double()>& loss,
                                      const GradCheckOptions& options = {}) {
    GradCheckResult result;
    double max_analytic = 0.0;
    for (size_t i = 0; i < n; ++i) {
        max_analytic = std::max(max_analytic, std::abs(static_cast<double>(analytic[i])));
    }
    result.floor = std::max(options.abs_floor, options.floor_fraction * max_analytic);

    std::vector<size_t> coords(n);
    std::iota(coords.begin(), coords.end(), size_t{0});
    if (options.max_coords != 0 && options.max_coords < n) {
        // Partial Fisher-Yates: the first max_coords entries become a uniform sample.
        Rng rng{rng_key(options.seed, 0x67726164), 0};
        for (size_t i = 0; i < options.max_coords; ++i) {
            const size_t j = i + static_cast<size_t>(rng.next_u64() % (n - i));
            std::swap(coords[i], coords[j]);
        }
        coords.resize(options.max_coords);
        std::sort(coords.begin(), coords.end());
    }

    for (const size_t i : coords) {
        const float original = x[i];
        const double h = options.rel_step *
                         std::max(std::abs(static_cast<double>(original)), options.step_floor);
        const float plus = static_cast<float>(original + h);
        const float minus = static_cast<float>(original - h);
        x[i] = plus;
        const double loss_plus = loss();
        x[i] = minus;
        const double loss_minus = loss();
        x[i] = original;
        const double numeric =
            (loss_plus - loss_minus) / (static_cast<double>(plus) - static_cast<double>(minus));
        const double a = analytic[i];
        const double allowed =
            options.rel_tol * std::max({std::abs(a), std::abs(numeric), result.floor});
        double ratio = std::abs(a - numeric) / allowed;
        if (std::isnan(ratio)) ratio = std::numeric_limits<double>::infinity();
        ++result.checked;
        if (ratio > 1.0) ++result.failures;
        if (ratio > result.worst_ratio || result.checked == 1) {
            result.worst_ratio = ratio;
            result.worst_index = i;
            result.worst_analytic = a;
            result.worst_numeric = numeric;
        }
    }
    return result;
}

// The same check as a GoogleTest assertion: EXPECT_TRUE(gradient_matches("dwte", ...)).
inline ::testing::AssertionResult gradient_matches(const std::string& name, float* x, size_t n,
                                                   const float* analytic,
                                                   const std::function<double()>& loss,
                                                   const GradCheckOptions& options = {}) {
    const GradCheckResult result = check_gradient(x, n, analytic, loss, options);
    if (result.checked == 0) {
        return ::testing::AssertionFailure() << "gradient of " << name << ": nothing to check";
    }
    if (result.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << result.describe(name);
}

}  // namespace greenmoe::testing

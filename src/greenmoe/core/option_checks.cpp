// Numeric option validators (see option_checks.h).
#include "greenmoe/core/option_checks.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace greenmoe {

namespace {

// A validator accepting the values for which `ok` holds; `rule` says which ("a number
// ≥ 1") in errors, `label` in --help (">=1": ASCII, as CLI11 aligns columns by bytes).
template <typename Ok>
CLI::Validator number_check(std::string rule, std::string label, Ok ok) {
    return CLI::Validator(
        [rule, ok](std::string& text) -> std::string {
            char* end = nullptr;
            errno = 0;
            const double v = std::strtod(text.c_str(), &end);
            if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE)
                return fmt::format("must be {}, got '{}'", rule, text);
            // NaN fails every comparison, so `ok` refuses it too.
            if (!ok(v)) return fmt::format("must be {}, got {}", rule, text);
            return {};
        },
        std::move(label));
}

}  // namespace

CLI::Validator positive_count() {
    return number_check("a whole number ≥ 1", ">=1",
                        [](double v) { return v >= 1 && v == std::floor(v) && v < 9.2e18; });
}

CLI::Validator at_least(double min) {
    return number_check(fmt::format("a number ≥ {}", min), fmt::format(">={}", min),
                        [min](double v) { return v >= min; });
}

CLI::Validator above(double min) {
    return number_check(fmt::format("a number > {}", min), fmt::format(">{}", min),
                        [min](double v) { return v > min; });
}

CLI::Validator in_range(double lo, double hi, bool lo_open) {
    const std::string range = fmt::format("{}{}, {}]", lo_open ? "(" : "[", lo, hi);
    return number_check("a number in " + range, "in " + range,
                        [=](double v) { return (lo_open ? v > lo : v >= lo) && v <= hi; });
}

}  // namespace greenmoe

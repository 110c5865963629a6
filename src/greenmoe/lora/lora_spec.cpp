// Parsing and printing the --lora value (see lora_spec.h).
#include "greenmoe/lora/lora_spec.h"

#include <charconv>
#include <cmath>
#include <sstream>

#include "greenmoe/core/error.h"

namespace greenmoe::lora {

namespace {

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> items;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) items.push_back(item);
    return items;
}

double number(const std::string& key, const std::string& value) {
    double v = 0.0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    usage_check(ec == std::errc() && end == value.data() + value.size() && std::isfinite(v),
                "--lora: {}={} is not a number", key, value);
    return v;
}

}  // namespace

double LoraSpec::scale() const {
    return rslora ? alpha / std::sqrt(static_cast<double>(rank))
                  : alpha / static_cast<double>(rank);
}

std::string LoraSpec::to_string() const {
    std::ostringstream out;
    out << "r=" << rank << ",alpha=" << alpha << ",dropout=" << dropout
        << ",rslora=" << (rslora ? "true" : "false") << ",targets=";
    for (size_t i = 0; i < targets.size(); ++i) out << (i ? "," : "") << targets[i];
    return out.str();
}

LoraSpec parse_lora_spec(const std::string& text) {
    constexpr const char* kExpected =
        "expected r=N,alpha=X,dropout=P,rslora=true|false,targets=NAME[,NAME…], e.g. "
        "r=64,alpha=16,dropout=0.1,targets=q_proj,k_proj,v_proj,o_proj";
    LoraSpec spec;
    bool alpha_given = false, in_targets = false;
    for (const std::string& item : split_commas(text)) {
        const size_t eq = item.find('=');
        if (eq == std::string::npos) {
            usage_check(in_targets && !item.empty(), "--lora: '{}' is not key=value ({})", item,
                        kExpected);
            spec.targets.push_back(item);
            continue;
        }
        const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
        in_targets = false;
        if (key == "r") {
            const double r = number(key, value);
            usage_check(r >= 1 && r == std::floor(r) && r <= 1e6,
                        "--lora: r={} must be a whole number ≥ 1", value);
            spec.rank = static_cast<int64_t>(r);
        } else if (key == "alpha" || key == "lora_alpha") {
            spec.alpha = number(key, value);
            usage_check(spec.alpha > 0, "--lora: alpha={} must be > 0", value);
            alpha_given = true;
        } else if (key == "dropout" || key == "lora_dropout") {
            spec.dropout = number(key, value);
            usage_check(spec.dropout >= 0 && spec.dropout < 1,
                        "--lora: dropout={} must be in [0, 1)", value);
        } else if (key == "rslora" || key == "use_rslora") {
            usage_check(value == "true" || value == "false",
                        "--lora: rslora={} must be true or false", value);
            spec.rslora = value == "true";
        } else if (key == "targets" || key == "target_modules") {
            usage_check(!value.empty(), "--lora: targets= names no module ({})", kExpected);
            spec.targets.push_back(value);
            in_targets = true;
        } else {
            usage_fail("--lora: unknown key '{}' ({})", key, kExpected);
        }
    }
    usage_check(!spec.targets.empty(), "--lora '{}': no targets ({})", text, kExpected);
    if (!alpha_given) spec.alpha = static_cast<double>(spec.rank);
    return spec;
}

}  // namespace greenmoe::lora

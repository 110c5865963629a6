// Rotary position embeddings (see rope.h); the formulas follow transformers'
// modeling_rope_utils.
#include "greenmoe/hf/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace greenmoe::hf {

namespace {

double yarn_get_mscale(double scale, double mscale) {
    return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

double yarn_correction_dim(double rotations, int dim, double base, int max_position) {
    return dim * std::log(max_position / (rotations * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(base));
}

void yarn(const RopeConfig& c, std::vector<double>& inv_freq, double& attention_factor) {
    const int dim = c.dim;
    double low = yarn_correction_dim(c.beta_fast, dim, c.theta, c.original_max_position);
    double high = yarn_correction_dim(c.beta_slow, dim, c.theta, c.original_max_position);
    if (c.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    if (low == high) high += 0.001;
    for (size_t i = 0; i < inv_freq.size(); ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        const double extrapolation = 1.0 - ramp;
        const double base = inv_freq[i];
        inv_freq[i] = base / c.factor * (1.0 - extrapolation) + base * extrapolation;
    }
    if (c.attention_factor != 0.0) {
        attention_factor = c.attention_factor;
    } else if (c.mscale != 0.0 && c.mscale_all_dim != 0.0) {
        attention_factor =
            yarn_get_mscale(c.factor, c.mscale) / yarn_get_mscale(c.factor, c.mscale_all_dim);
    } else {
        attention_factor = yarn_get_mscale(c.factor, 1.0);
    }
}

void llama3(const RopeConfig& c, std::vector<double>& inv_freq) {
    const double old_len = c.original_max_position;
    const double low_wavelen = old_len / c.low_freq_factor;
    const double high_wavelen = old_len / c.high_freq_factor;
    for (double& f : inv_freq) {
        const double wavelen = 2.0 * std::numbers::pi / f;
        if (wavelen > low_wavelen) {
            f /= c.factor;
        } else if (wavelen >= high_wavelen) {
            const double smooth =
                (old_len / wavelen - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
            f = (1.0 - smooth) * f / c.factor + smooth * f;
        }
    }
}

}  // namespace

Rope::Rope(const RopeConfig& c) : dim_(c.dim), style_(c.style) {
    for (int i = 0; i < dim_ / 2; ++i) {
        // transformers computes the exponent in fp32: keep its rounding.
        const auto exponent = static_cast<float>(2 * i) / static_cast<float>(dim_);
        inv_freq_.push_back(1.0 / std::pow(c.theta, static_cast<double>(exponent)));
    }
    if (c.type == "linear") {
        for (double& f : inv_freq_) f /= c.factor;
    } else if (c.type == "llama3") {
        llama3(c, inv_freq_);
    } else if (c.type == "yarn") {
        yarn(c, inv_freq_, attention_factor_);
    }
}

void Rope::rotate(float* x, int64_t pos, double direction) const {
    const int half = dim_ / 2;
    for (int i = 0; i < half; ++i) {
        const double angle = static_cast<double>(pos) * inv_freq_[static_cast<size_t>(i)];
        const double c = std::cos(angle) * attention_factor_,
                     s = direction * std::sin(angle) * attention_factor_;
        float& a = style_ == RopeStyle::Half ? x[i] : x[2 * i];
        float& b = style_ == RopeStyle::Half ? x[i + half] : x[2 * i + 1];
        const double x0 = a, x1 = b;
        a = static_cast<float>(x0 * c - x1 * s);
        b = static_cast<float>(x1 * c + x0 * s);
    }
}

void Rope::apply(float* x, int64_t pos) const {
    rotate(x, pos, 1.0);
}

void Rope::apply_transposed(float* x, int64_t pos) const {
    rotate(x, pos, -1.0);
}

}  // namespace greenmoe::hf

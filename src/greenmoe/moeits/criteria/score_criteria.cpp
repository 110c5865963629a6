// The per-expert score criteria: frequency, EAN, REAP (calibration statistics), router-norm
// (weights) and random (see criterion.h for their definitions).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/moeits/criteria/criterion.h"

namespace greenmoe::moeits {

std::vector<double> frequency_scores(const LayerCalibration& layer) {
    return {layer.count.begin(), layer.count.end()};
}

std::vector<double> ean_scores(const LayerCalibration& layer) {
    return layer.norm_sum;
}

std::vector<double> reap_scores(const LayerCalibration& layer) {
    std::vector<double> s(layer.count.size(), 0.0);
    for (size_t e = 0; e < s.size(); ++e) {
        if (layer.count[e] > 0) s[e] = layer.gated_norm_sum[e] / double(layer.count[e]);
    }
    return s;
}

std::vector<double> router_norm_scores(const MoeModel& model, const MoeLayer& layer) {
    const TensorInfo& t = model.tensors().get(layer.router_weight);
    const std::vector<float> w = model.tensors().read_f32(layer.router_weight);
    const auto cols = static_cast<size_t>(t.shape[1]);
    std::vector<double> norm(static_cast<size_t>(layer.n_experts));
    for (size_t e = 0; e < norm.size(); ++e) {
        double s = 0.0;
        for (size_t c = 0; c < cols; ++c) s += double(w[e * cols + c]) * w[e * cols + c];
        norm[e] = std::sqrt(s);
    }
    return norm;
}

std::vector<int> choose_random(int n_experts, int count, uint64_t seed, int layer) {
    std::vector<int> order(static_cast<size_t>(n_experts));
    std::iota(order.begin(), order.end(), 0);
    Rng rng{rng_key(seed, static_cast<uint64_t>(layer), 0x6d6f6569ULL), 0};
    for (int i = 0; i < count; ++i) {
        const auto span = static_cast<uint64_t>(n_experts - i);
        const int j = i + static_cast<int>(rng.next_u64() % span);
        std::swap(order[i], order[j]);
    }
    std::vector<int> kept(order.begin(), order.begin() + count);
    std::sort(kept.begin(), kept.end());
    return kept;
}

namespace {

const LayerCalibration& calibration_of(const LayerContext& c, Criterion kind) {
    check(c.calibration != nullptr, "layer {}: criterion {} needs a calibration pass",
          c.layer->layer, criterion_name(kind));
    check(c.calibration->n_experts == c.layer->n_experts,
          "layer {}: the calibration routed among {} experts, the model has {}", c.layer->layer,
          c.calibration->n_experts, c.layer->n_experts);
    return *c.calibration;
}

class CalibrationScore : public ExpertCriterion {
  public:
    explicit CalibrationScore(Criterion kind) : kind_(kind) {}
    Criterion kind() const override { return kind_; }
    bool needs_calibration() const override { return true; }
    std::vector<double> scores(const LayerContext& c) const override {
        const LayerCalibration& s = calibration_of(c, kind_);
        if (kind_ == Criterion::Frequency) return frequency_scores(s);
        check(s.has_outputs,
              "layer {}: criterion {} needs the experts' outputs, which this layer's engine does "
              "not give (greenmoe condmlp experts are biases of one shared MLP): use frequency",
              s.layer, criterion_name(kind_));
        if (kind_ == Criterion::Ean) return ean_scores(s);
        return reap_scores(s);
    }

  private:
    Criterion kind_;
};

class RouterNorm : public ExpertCriterion {
  public:
    Criterion kind() const override { return Criterion::RouterNorm; }
    std::vector<double> scores(const LayerContext& c) const override {
        return router_norm_scores(*c.model, *c.layer);
    }
};

class Random : public ExpertCriterion {
  public:
    Criterion kind() const override { return Criterion::Random; }
    LayerChoice choose(const LayerContext& c, int count) const override {
        return {choose_random(c.layer->n_experts, count, c.seed, c.layer->layer), {}, nullptr};
    }
};

}  // namespace

std::unique_ptr<ExpertCriterion> make_score_criterion(Criterion c) {
    switch (c) {
        case Criterion::RouterNorm:
            return std::make_unique<RouterNorm>();
        case Criterion::Random:
            return std::make_unique<Random>();
        case Criterion::Frequency:
        case Criterion::Ean:
        case Criterion::Reap:
            return std::make_unique<CalibrationScore>(c);
        default:
            fail("criterion {} is not a score criterion", criterion_name(c));
    }
}

}  // namespace greenmoe::moeits

// The criteria that choose a set of experts rather than score each: MoEITS's rule on the
// similarity matrix, and NAEE's reconstruction search (see criterion.h).
#include "greenmoe/core/error.h"
#include "greenmoe/moeits/criteria/criterion.h"
#include "greenmoe/moeits/naee.h"
#include "greenmoe/moeits/prune_rule.h"

namespace greenmoe::moeits {

namespace {

class Moeits : public ExpertCriterion {
  public:
    Criterion kind() const override { return Criterion::Nmi; }
    LayerChoice choose(const LayerContext& c, int count) const override {
        check(c.similarity != nullptr, "layer {}: moeits needs the layer's similarity matrix",
              c.layer->layer);
        const PruneResult r =
            prune_layer_to_keep(*c.similarity, c.layer->n_experts, count, c.layer->top_k);
        return {r.kept,
                {},
                {{"threshold", r.threshold},
                 {"factor", r.factor},
                 {"stopped_at_min_keep", r.stopped_at_min_keep}}};
    }
};

class Naee : public ExpertCriterion {
  public:
    Criterion kind() const override { return Criterion::Naee; }
    bool needs_calibration() const override { return true; }
    bool needs_reconstruction() const override { return true; }
    LayerChoice choose(const LayerContext& c, int count) const override {
        check(c.calibration != nullptr, "layer {}: naee needs a calibration pass", c.layer->layer);
        const NaeeChoice n = naee_search(*c.calibration, count);
        nlohmann::json detail = {{"search", n.exhaustive ? "exhaustive" : "greedy"},
                                 {"subsets_evaluated", n.subsets_evaluated},
                                 {"reconstruction_error", n.error}};
        // Where both run, the greedy search's error beside the exhaustive one shows what
        // the greedy search loses on layers too large to enumerate.
        if (n.exhaustive && count < c.layer->n_experts) {
            const NaeeChoice g = naee_greedy(*c.calibration, count);
            detail["greedy_kept"] = g.kept;
            detail["greedy_reconstruction_error"] = g.error;
        }
        return {n.kept, {}, detail};
    }
};

}  // namespace

std::unique_ptr<ExpertCriterion> make_moeits_criterion() {
    return std::make_unique<Moeits>();
}
std::unique_ptr<ExpertCriterion> make_naee_criterion() {
    return std::make_unique<Naee>();
}

}  // namespace greenmoe::moeits

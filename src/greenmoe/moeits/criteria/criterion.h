// Expert-pruning criteria behind one interface: each scores a layer's experts (from the
// weights or from the calibration pass) or chooses the set to keep directly, and the
// simplify pipeline writes whatever they keep in the same pruned layout.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/moeits/calibration.h"
#include "greenmoe/moeits/model_adapter.h"

namespace greenmoe::moeits {

// moeits: the MoEITS rule on the NMI similarity (named nmi before). random, router-norm:
// data-free baselines. frequency, ean, reap, naee: data-driven, from a calibration pass.
enum class Criterion { Nmi, Random, RouterNorm, Frequency, Ean, Reap, Naee };
// "moeits" (or "nmi"), "random", "router-norm", "frequency", "ean", "reap", "naee"
Criterion parse_criterion(const std::string& name);
const char* criterion_name(Criterion c);

// What a criterion may read about one MoE layer.
struct LayerContext {
    const MoeModel* model = nullptr;
    const MoeLayer* layer = nullptr;
    const LayerCalibration* calibration = nullptr;    // data-driven criteria only
    const std::vector<double>* similarity = nullptr;  // MoEITS's M (E×E), moeits only
    uint64_t seed = 0;                                // random only
};

struct LayerChoice {
    std::vector<int> kept;       // original indices, ascending
    std::vector<double> scores;  // per expert, higher is kept first; empty for set criteria
    nlohmann::json detail;       // criterion-specific, for summary.json (null: none)
};

class ExpertCriterion {
  public:
    virtual ~ExpertCriterion() = default;
    virtual Criterion kind() const = 0;
    // Needs a calibration pass, and NAEE's reconstruction statistics in it.
    virtual bool needs_calibration() const { return false; }
    virtual bool needs_reconstruction() const { return false; }
    // Keeps `count` experts of the layer (count ≤ its expert count). Score criteria keep the
    // `count` highest scores (the lower index on ties).
    virtual LayerChoice choose(const LayerContext& context, int count) const;
    // One score per expert; set criteria (moeits, naee) throw.
    virtual std::vector<double> scores(const LayerContext& context) const;
};

std::unique_ptr<ExpertCriterion> make_criterion(Criterion c);

// The `count` highest scores' indices, ascending; ties go to the lower index.
std::vector<int> keep_highest(const std::vector<double>& score, int count);

// The published definitions, per expert e of a layer (calibration statistics as collected):
// frequency: how many routed slots chose e.
std::vector<double> frequency_scores(const LayerCalibration& layer);
// EAN (expert activation norm): Σ over e's routed tokens of ‖f_e(x)‖₂.
std::vector<double> ean_scores(const LayerCalibration& layer);
// REAP (Cerebras, arXiv 2510.13999): mean over e's routed tokens of g̃_e(x) · ‖f_e(x)‖₂,
// g̃ the top-k gate weights renormalised to sum 1; 0 for an expert no token chose.
std::vector<double> reap_scores(const LayerCalibration& layer);
// router-norm: the L2 norm of e's router weight row.
std::vector<double> router_norm_scores(const MoeModel& model, const MoeLayer& layer);
// random: `count` experts drawn without replacement, seeded by seed and layer.
std::vector<int> choose_random(int n_experts, int count, uint64_t seed, int layer);

}  // namespace greenmoe::moeits

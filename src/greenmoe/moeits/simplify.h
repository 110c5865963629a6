// The expert-pruning pipeline: model → what the criterion reads (MoEITS's similarity M,
// cached as .npy; a calibration pass) → the experts each layer keeps → the simplified model,
// written atomically in the input's layout (spec §2–4, docs/pruning-criteria.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "greenmoe/io/safetensors_model.h"
#include "greenmoe/moeits/criteria/criterion.h"
#include "greenmoe/moeits/model_adapter.h"
#include "greenmoe/moeits/nmi_cache.h"
#include "greenmoe/moeits/pruned_model.h"

namespace greenmoe::moeits {

struct SimplifyOptions {
    std::filesystem::path model;  // HF folder, .safetensors, or greenmoe checkpoint/run
    std::filesystem::path out;    // output folder
    // Exactly one target: the rule's factor, experts kept per layer, or the share of expert
    // parameters to remove (percent; the largest factor that removes at least that much).
    std::optional<double> factor;
    std::optional<int> keep;
    std::optional<double> reduce_percent;
    Criterion criterion = Criterion::Nmi;
    uint64_t seed = 0;
    // Data-driven criteria (frequency, ean, reap, naee): token shards (a pattern, e.g. the
    // run's validation shards) of which the first `calibration_tokens` run through the model
    // in sequences of `calibration_sequence_length` (0: 256 or the model's maximum).
    std::string calibration_data;
    int64_t calibration_tokens = 16384;
    int calibration_sequence_length = 0;
    std::vector<double> kind_weights;  // empty: the architecture's (spec §2)
    // Where each layer's M is cached (layer_<L>.npy + layer_<L>.json key); empty: <out>/nmi.
    // An earlier output's nmi folder of the same input model works too.
    std::filesystem::path nmi_cache;
    uint64_t max_shard_bytes = kDefaultMaxShardBytes;
    // The similarity of a layer stays within this: when every expert's binned matrices do
    // not fit, experts are compared group by group (re-binning, bit-identical results) and
    // on fewer threads (plan_similarity); refused only below two matrices on one thread.
    uint64_t memory_budget = 4'000'000'000ULL;
    bool overwrite = false;  // replace an earlier `simplify` output in `out`
    bool show_progress = true;
    std::function<void(const std::string&)> log;  // report lines; default: stdout
};

struct LayerOutcome {
    int layer = 0;
    int n_experts = 0;
    int top_k = 0;
    std::vector<int> kept;   // original expert indices, ascending
    double threshold = 0.0;  // the rule's threshold (NaN when the rule did not run)
    double factor = 0.0;     // the rule's factor (for --keep, the one found for this layer)
    bool stopped_at_min_keep = false;
    bool nmi_cached = false;  // M came from the cache
    int64_t expert_params_before = 0, expert_params_after = 0;
    Criterion criterion = Criterion::Nmi;
    std::vector<double> scores;  // per expert, for score criteria
    nlohmann::json detail;       // criterion-specific (naee: search and error), or null
};

struct SimplifyResult {
    std::string architecture;
    std::vector<LayerOutcome> layers;
    std::vector<SkippedLayer> skipped;
    std::optional<double> factor;  // given, or found for --reduce
    int nmi_layers_computed = 0, nmi_layers_reused = 0;
    int64_t params_before = 0, params_after = 0;
    int64_t expert_params_before = 0, expert_params_after = 0;
    std::vector<std::string> files;  // safetensors files written
    nlohmann::json calibration;      // the calibration pass (files, tokens), or null
    nlohmann::json summary;          // as written to <out>/summary.json
};

SimplifyResult simplify_model(const SimplifyOptions& options);

}  // namespace greenmoe::moeits

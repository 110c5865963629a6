// The MoEITS expert-pruning pipeline: model → per-layer similarity M (cached as .npy) →
// pruning rule → simplified model written atomically (spec §2–4).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "greenmoe/io/safetensors_model.h"
#include "greenmoe/moeits/model_adapter.h"

namespace greenmoe::moeits {

// How experts are chosen. nmi: the MoEITS rule. random and router-norm are baselines that
// keep, per layer, as many experts as --keep asks or as the NMI rule keeps at the given (or
// searched) factor: random draws them (seeded by --seed and the layer), router-norm keeps the
// experts whose router weight rows have the largest L2 norm, frequency (greenmoe models
// only) keeps the experts that calibration tokens are routed to most often.
enum class Criterion { Nmi, Random, RouterNorm, Frequency };
// "nmi", "random", "router-norm", "frequency"
Criterion parse_criterion(const std::string& name);
const char* criterion_name(Criterion c);

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
    // --criterion frequency: token shards (a pattern, e.g. the run's validation shards) run
    // through the model in evaluation mode; every expert choice of the first
    // `calibration_tokens` tokens is counted.
    std::string calibration_data;
    int64_t calibration_tokens = 16384;
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
    nlohmann::json summary;          // as written to <out>/summary.json
};

SimplifyResult simplify_model(const SimplifyOptions& options);

// Each MoE layer's M (E×E row-major), from `cache_dir` where a layer's key matches this model
// and kind weights, else computed with layer_similarity and stored there. `reused[i]` tells
// which came from the cache. An empty cache_dir disables caching.
std::vector<std::vector<double>> layer_similarities(const MoeModel& model,
                                                    const std::filesystem::path& cache_dir,
                                                    bool show_progress, uint64_t memory_budget,
                                                    std::vector<bool>* reused = nullptr);

// The key a cached M must match: the model files' names, sizes, mtimes and header hashes,
// the layer, its expert count, matrix kinds and weights.
nlohmann::json nmi_cache_key(const MoeModel& model, const MoeLayer& layer);

// The tensors of the model with only `kept[i]` experts in layer model.layers()[i]: other
// tensors byte-identical, router rows of kept experts in order, experts renumbered 0..k−1
// (stacked greenmoe tensors sliced). The spans point into the model's mmap.
std::vector<OutputTensor> simplified_tensors(const MoeModel& model,
                                             const std::vector<std::vector<int>>& kept);

// config.json of the simplified Hugging Face model: num_experts_by_block (kept count per
// decoder layer, 0 for layers without routed experts), moeits_kept_experts {layer: original
// indices} (composed with an earlier pruning's), and the expert-count key (num_local_experts,
// num_experts or n_routed_experts) set to the largest kept count, so that stock transformers
// loads the model exactly when every layer keeps the same number.
nlohmann::json simplified_hf_config(const MoeModel& model,
                                    const std::vector<std::vector<int>>& kept);

// The "greenmoe.model" config JSON of a simplified greenmoe model: the original one plus
// n_experts_by_layer (kept count per block, 0 for blocks without MLP experts); n_experts is
// left unchanged (mixture-of-attention blocks still use it).
nlohmann::json simplified_greenmoe_config(const MoeModel& model,
                                          const std::vector<std::vector<int>>& kept);

}  // namespace greenmoe::moeits

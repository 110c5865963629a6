// The MoE layers of a model, whatever its architecture: which tensors are experts, routers
// and shared experts, and how to read one expert's matrix (MoEITS spec §2, §4).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/io/safetensors_model.h"

namespace greenmoe::moeits {

// One routed-expert layer.
struct MoeLayer {
    int layer = 0;                        // block index in the model
    int n_experts = 0;                    // routed experts (shared experts excluded)
    int top_k = 1;                        // experts per token: pruning never goes below it
    std::vector<std::string> kind_names;  // the scored matrices, e.g. w1, w2, w3
    std::vector<double> kind_weights;     // their weights in the similarity (sum 1)

    // Hugging Face layout: one tensor per expert, named experts_prefix + e + "." + suffix.
    // greenmoe layout (stacked): tensors whose first dimension is the expert.
    bool stacked = false;
    std::string experts_prefix;                // HF: "model.layers.3.mlp.experts."
    std::vector<std::string> expert_suffixes;  // HF: every tensor an expert has, sorted
    std::vector<std::string> stacked_tensors;  // greenmoe: full names, dim 0 = expert
    // Per kind: the HF suffix or the greenmoe stacked tensor holding that matrix.
    std::vector<std::string> kind_tensors;
    // Router tensors (weight, bias, correction bias): dim 0 = expert, rows kept on pruning.
    std::vector<std::string> router_tensors;
    std::string router_weight;                // the [E, C] routing matrix among them
    std::vector<std::string> shared_tensors;  // shared experts: never scored nor pruned

    int64_t params_per_expert = 0;  // Σ numel of one expert's tensors

    // HF name of expert e's tensor `suffix`.
    std::string expert_tensor(int e, const std::string& suffix) const;
    // Every tensor that belongs to experts (for stacked layers the stacked tensors).
    std::vector<std::string> expert_tensor_names() const;
};

// A layer that has experts but is not prunable this way, or a dense layer, and why.
struct SkippedLayer {
    int layer = 0;
    std::string reason;
};

class MoeModel {
  public:
    // `path`: a Hugging Face folder (config.json + safetensors), a .safetensors file, or a
    // greenmoe checkpoint (weights file, checkpoint folder or run folder). kind_weights
    // overrides the architecture's default weights (one per matrix kind, normalised to sum 1).
    // Throws Error for an unknown architecture (listing the supported ones), a model with no
    // prunable layer, or tensors inconsistent with the config.
    static MoeModel open(const std::filesystem::path& path,
                         const std::vector<double>& kind_weights = {});

    // "mixtral", "qwen2_moe", "qwen3_moe", "deepseek", "deepseek_v2", "deepseek_v3", "olmoe",
    // "granitemoe", "granitemoeshared", "greenmoe".
    const std::string& architecture() const { return architecture_; }
    bool is_greenmoe() const { return architecture_ == "greenmoe"; }
    const std::filesystem::path& path() const { return path_; }
    const SafetensorsModel& tensors() const { return tensors_; }
    // config.json (Hugging Face), or the "greenmoe.model" metadata JSON (greenmoe).
    const nlohmann::json& config() const { return config_; }
    int num_layers() const { return num_layers_; }
    const std::vector<MoeLayer>& layers() const { return layers_; }
    const std::vector<SkippedLayer>& skipped() const { return skipped_; }
    // The config key holding the expert count ("num_local_experts", ...; "n_experts").
    const std::string& experts_key() const { return experts_key_; }

    // Expert e's matrix of kind `kind` of `layer`, decoded to float (out is resized).
    void read_matrix(const MoeLayer& layer, int e, int kind, std::vector<float>& out) const;
    // Numel of one matrix of a kind (the same for every expert of the layer).
    int64_t matrix_numel(const MoeLayer& layer, int kind) const;

    static std::vector<std::string> supported_architectures();

    MoeModel(MoeModel&&) noexcept = default;
    MoeModel& operator=(MoeModel&&) noexcept = default;

  private:
    MoeModel(SafetensorsModel tensors) : tensors_(std::move(tensors)) {}
    void find_hf_layers(const std::vector<double>& kind_weights);
    void find_greenmoe_layers(const std::vector<double>& kind_weights);

    std::filesystem::path path_;
    SafetensorsModel tensors_;
    nlohmann::json config_;
    std::string architecture_, experts_key_;
    int num_layers_ = 0;
    std::vector<MoeLayer> layers_;
    std::vector<SkippedLayer> skipped_;
};

// The config as the engine describes a model to prune: routing groups (n_group, topk_group)
// set to 1. They move no tensors, and the engine refuses them on a pruned model, which may
// still be pruned further.
nlohmann::json without_routing_groups(nlohmann::json config);

// Parses "w1,w2,w3" weights (--weights); throws Error naming the option on bad input.
std::vector<double> parse_kind_weights(const std::string& text);

}  // namespace greenmoe::moeits

// The pruned model as written: the tensors with only the kept experts (renumbered), the
// router rows of kept experts, and the config that describes them (MoEITS spec §4).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "greenmoe/io/safetensors_model.h"
#include "greenmoe/moeits/model_adapter.h"

namespace greenmoe::moeits {

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

struct PrunedWriteOptions {
    uint64_t max_shard_bytes = kDefaultMaxShardBytes;
    bool overwrite = false;
    bool show_progress = true;
};

// What is written: the tensors (views into the input's mmap, and the greenmoe bias held
// here), the config, and the file options.
struct PrunedOutput {
    std::vector<OutputTensor> tensors;
    std::optional<std::vector<float>> bias;
    nlohmann::json config;  // config.json, or greenmoe's model config
    ModelFolderWriteOptions write;
};

PrunedOutput pruned_output(const MoeModel& model, const std::vector<std::vector<int>>& kept,
                           const PrunedWriteOptions& options);

// The input model's tensors against its config: checked before anything is computed or
// written (the similarity cache included).
void check_input_tensors(const MoeModel& model);

// The tensors about to be written to `out_dir` against the config written with them.
void check_output_tensors(const MoeModel& model, const PrunedOutput& out,
                          const std::filesystem::path& out_dir);

// Tokenizer and generation files of a Hugging Face folder go along, so the output is a
// complete model.
void copy_extra_files(const MoeModel& model, const std::filesystem::path& staging);

}  // namespace greenmoe::moeits

// The trainable adapters of a LoRA run: for every targeted matrix W [out, in] of a Hugging Face
// model, A [r, in] and B [out, r] in fp32, laid out in one flat block (with their gradients)
// for AdamW; read from and written as PEFT adapters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/hf/hf_config.h"
#include "greenmoe/hf/hf_weights.h"
#include "greenmoe/hf/lora_adapter.h"
#include "greenmoe/lora/lora_spec.h"
#include "greenmoe/model/param_layout.h"

namespace greenmoe::lora {

// One adapted matrix. a/b index the flat blocks (values and grads alike).
struct LoraTarget {
    std::string module;  // "model.layers.0.self_attn.q_proj"
    hf::Mat base;        // the frozen weight it adapts
    int64_t rank = 0, in = 0, out = 0;
    float scale = 0.0f;
    size_t a = 0, b = 0;  // offsets of A [rank, in] and B [out, rank] in the flat blocks
};

class LoraParams {
  public:
    // Adapters for every matrix of `weights` that a target of `spec` names, initialised as
    // PEFT does (A: kaiming-uniform, i.e. U(−1/√in, 1/√in); B: zeros) from `seed`. A target
    // that matches no matrix of the model, or matches only ones that cannot be adapted
    // (embeddings, the LM head, stacked experts), and a rank above min(in, out) throw Error
    // naming the target and what the model has.
    static LoraParams create(const hf::ModelWeights& weights, const hf::ModelConfig& config,
                             const LoraSpec& spec, uint64_t seed);
    // The adapters of a PEFT adapter read by read_lora_adapter (to continue training one).
    static LoraParams from_adapter(const hf::ModelWeights& weights, const hf::LoraAdapter& adapter);

    const std::vector<LoraTarget>& targets() const { return targets_; }
    const ParamLayout& layout() const { return layout_; }
    float* values() { return values_.data(); }
    const float* values() const { return values_.data(); }
    float* grads() { return grads_.data(); }
    const float* grads() const { return grads_.data(); }
    void zero_grads();
    // The adapter of the matrix `m` views, or null: a whole target, or a band of its rows
    // (Granite's gate and up halves of one tensor), whose first row is put in *row0.
    const LoraTarget* find(const hf::Mat& m, int64_t* row0) const;
    size_t num_parameters() const { return layout_.num_parameters(); }

    // The adapters as LoraModules (merge_lora / write_merged_model take these).
    hf::LoraAdapter to_adapter(const std::string& base_model) const;

  private:
    std::vector<LoraTarget> targets_;
    // (first byte, index) of every target, by address: find() is a binary search, called for
    // every product of every block.
    std::vector<std::pair<const std::byte*, size_t>> by_address_;
    void index_targets();
    ParamLayout layout_;
    std::vector<float> values_, grads_;
};

// Writes a PEFT adapter folder: adapter_config.json (peft_type LORA, task_type CAUSAL_LM, r,
// lora_alpha, lora_dropout, use_rslora, target_modules, base_model_name_or_path, …) and
// adapter_model.safetensors with base_model.model.<module>.lora_A.weight / lora_B.weight in
// F32, each written atomically. PeftModel.from_pretrained loads it.
void write_peft_adapter(const std::filesystem::path& dir, const LoraParams& params,
                        const LoraSpec& spec, const std::string& base_model);

}  // namespace greenmoe::lora

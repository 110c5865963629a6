// A Hugging Face decoder-only causal LM (config.json + safetensors) ready to run: the
// description, the memory-mapped weights, and the forward pass to logits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "greenmoe/hf/hf_config.h"
#include "greenmoe/hf/hf_weights.h"
#include "greenmoe/hf/kv_cache.h"
#include "greenmoe/hf/lora_adapter.h"
#include "greenmoe/hf/moe_block.h"
#include "greenmoe/hf/rope.h"
#include "greenmoe/io/safetensors_model.h"

namespace greenmoe::hf {

class HfModel {
  public:
    // A folder with config.json and model.safetensors (or model.safetensors.index.json).
    static HfModel load(const std::filesystem::path& dir);
    // The same with a PEFT LoRA adapter folder merged in (apply_lora); none when empty.
    static HfModel load_with_adapter(const std::filesystem::path& dir,
                                     const std::filesystem::path& adapter);
    // A config file and the weights: a .safetensors file, or a folder as above.
    static HfModel load(const std::filesystem::path& config_json,
                        const std::filesystem::path& weights);

    const ModelConfig& config() const { return config_; }
    const ModelWeights& weights() const { return weights_; }
    // Σ elements over every tensor of the weight files.
    int64_t parameter_count() const { return tensors_->total_parameters(); }

    // Logits [ids.size(), vocab] of the tokens at positions cache.length() … (attending to
    // everything the cache holds); their keys and values are appended to the cache.
    std::vector<float> forward(std::span<const int32_t> ids, KvCache& cache) const;
    // Several sequences of any lengths in one pass: ids[s] continues caches[s]. The projections
    // and MLPs run over all their tokens together, attention per sequence. Returns the logits
    // [ids[s].size(), vocab] of each, or with LogitRows::Last only its last position's
    // [1, vocab] (none for an empty sequence).
    enum class LogitRows { All, Last };
    std::vector<std::vector<float>> forward_batch(const std::vector<std::span<const int32_t>>& ids,
                                                  const std::vector<KvCache*>& caches,
                                                  LogitRows rows = LogitRows::All) const;
    // Logits [ids.size(), vocab] of one whole sequence.
    std::vector<float> logits(std::span<const int32_t> ids) const;

    // Experts removed from routing (their router logits −∞ before selection), one list of
    // flags per layer (empty: none): the original model as a pruned one would run it.
    void set_expert_mask(std::vector<std::vector<bool>> masked) { masked_ = std::move(masked); }
    // Every MoE layer of later forward passes shows its trace to `observer` (null: none, the
    // default). The observer must outlive those passes.
    void set_moe_observer(MoeObserver* observer) { observer_ = observer; }

    // Merges a LoRA adapter into the weights it targets: each becomes an fp32 copy
    // W + scale · B · A held by the model (the files stay untouched; memory grows by those
    // matrices in fp32), every slice of it in the forward pass included. A module that is not
    // one of the model's matrices, or of another shape, throws Error naming both.
    void apply_lora(const LoraAdapter& adapter);

  private:
    HfModel(ModelConfig config, std::unique_ptr<SafetensorsModel> tensors);
    ModelConfig config_;
    std::unique_ptr<SafetensorsModel> tensors_;
    ModelWeights weights_;
    Rope rope_;
    std::vector<std::vector<bool>> masked_;
    std::vector<std::vector<float>> merged_;  // what apply_lora's Mats point into
    MoeObserver* observer_ = nullptr;
};

}  // namespace greenmoe::hf

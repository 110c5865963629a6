// Saving and loading a GptModel's parameters as safetensors: greenmoe's own layout (nanoGPT
// state_dict names, Linear [out, in] weights) and Hugging Face GPT-2's (Conv1D [in, out]).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/gpt.h"

namespace greenmoe {

// The loss-free balancing bias's tensor name, in model files and in checkpoints'
// optimizer state.
inline constexpr const char* kMoeBiasTensor = "moe_bias";

// greenmoe layout: every tensor of model.layout() under its own name, F32. The model
// config is stored in the metadata under "greenmoe.model" (JSON).
void save_gpt_weights(const std::filesystem::path& path, const GptModel& model,
                      std::map<std::string, std::string> metadata = {});
// Checks that every expected tensor is present with its exact shape and that no other
// tensor is in the file; errors name the file and tensor. A model with routed layers may
// also find its loss-free balancing bias there, as "moe_bias" (GptConfig::moe_bias_shape):
// `greenmoe simplify` stores it so, since its output has no optimizer state to keep it in.
void load_gpt_weights(const std::filesystem::path& path, GptModel& model);
// Reads the "greenmoe.model" config stored by save_gpt_weights.
GptConfig read_gpt_weights_config(const std::filesystem::path& path);

// Hugging Face GPT-2: a folder with model.safetensors and config.json (or a
// .safetensors file, with config.json beside it when present). Accepts names with or
// without the "transformer." prefix, ignores the attn.bias / attn.masked_bias buffers
// and a tied lm_head.weight. Returns the config read from config.json (n_layer,
// n_head, n_embd, n_positions or n_ctx, vocab_size), or inferred from the shapes.
GptConfig read_hf_gpt2_config(const std::filesystem::path& path);
void load_hf_gpt2_weights(const std::filesystem::path& path, GptModel& model);
// Reads tensors named <prefix><HF name> (e.g. prefix "grad." for a reference file that
// stores gradients in the HF layout) into dst, a block laid out like model.layout().
void read_hf_gpt2_tensors(const SafetensorsFile& file, const std::string& prefix,
                          const GptModel& model, float* dst);
// Writes model.safetensors (names as OpenAI's gpt2 repository: "h.0.attn.c_attn.weight",
// Conv1D layout, vocabulary unpadded) and config.json into dir.
void export_hf_gpt2(const std::filesystem::path& dir, const GptModel& model);

}  // namespace greenmoe

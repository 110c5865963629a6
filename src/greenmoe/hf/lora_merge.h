// Merging a LoRA adapter's update into the matrices it targets: W' = W + scale · B · A.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/hf/hf_weights.h"
#include "greenmoe/hf/lora_adapter.h"
#include "greenmoe/io/safetensors_model.h"

namespace greenmoe::hf {

// The merged matrix [out, in] in fp32: the base widened to fp32, plus scale · B · A computed in
// fp32 (OpenBLAS). The shapes must agree (checked by find_lora_target).
std::vector<float> merged_matrix(const Mat& base, const LoraModule& module);

// The matrix `module` targets: <module>.weight among the weights' named matrices, of shape
// [module.out, module.in]. Throws Error naming the adapter, the module and what the model holds.
const Mat& find_lora_target(const ModelWeights& weights, const LoraAdapter& adapter,
                            const LoraModule& module);

// Writes base + adapter as a Hugging Face folder (PEFT's merge_and_unload, saved): every tensor
// of the base byte for byte, in its order and dtype, except each targeted weight, merged in fp32
// and rounded once to the base tensor's dtype (to nearest, ties to even); the base's
// config.json and its tokenizer and generation files beside. `options` says where and how
// (write_model_folder; input is set here). Returns what was written.
ModelFolderWritten write_merged_model(const std::filesystem::path& base_dir,
                                      const LoraAdapter& adapter, const std::filesystem::path& out,
                                      ModelFolderWriteOptions options);

}  // namespace greenmoe::hf

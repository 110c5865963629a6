// Merging a LoRA adapter's update into the matrices it targets: W' = W + scale · B · A.
#pragma once

#include <string>
#include <vector>

#include "greenmoe/hf/hf_weights.h"
#include "greenmoe/hf/lora_adapter.h"

namespace greenmoe::hf {

// The merged matrix [out, in] in fp32: the base widened to fp32, plus scale · B · A computed in
// fp32 (OpenBLAS). The shapes must agree (checked by find_lora_target).
std::vector<float> merged_matrix(const Mat& base, const LoraModule& module);

// The matrix `module` targets: <module>.weight among the weights' named matrices, of shape
// [module.out, module.in]. Throws Error naming the adapter, the module and what the model holds.
const Mat& find_lora_target(const ModelWeights& weights, const LoraAdapter& adapter,
                            const LoraModule& module);

}  // namespace greenmoe::hf

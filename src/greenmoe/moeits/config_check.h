// Before `simplify` writes anything, the tensors it reads and the tensors it is about to
// write are checked against their configs, name by name, with the shapes and dtypes the
// model that will load them expects: a broken input is refused, never copied through.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/io/safetensors.h"

namespace greenmoe::moeits {

// A Hugging Face config.json (any model_type the inference engine describes; others are
// not checked) or greenmoe's model config ("greenmoe.model" metadata) against the tensors
// that go with it. Throws Error naming `where`, the tensor and the expected shape or dtype.
// Hugging Face models may carry tensors the engine does not read (buffers); greenmoe files
// hold exactly the model's parameters and, for routed models, the loss-free bias.
void check_hf_tensors(const std::vector<TensorInfo>& tensors, const nlohmann::json& config,
                      const std::string& where);
void check_greenmoe_tensors(const std::vector<TensorInfo>& tensors, const nlohmann::json& config,
                            const std::string& where);

}  // namespace greenmoe::moeits

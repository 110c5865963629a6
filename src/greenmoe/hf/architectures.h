// One description per Hugging Face model_type: how its config keys map onto ModelConfig.
#pragma once

#include <string>
#include <vector>

#include "greenmoe/hf/config_reader.h"
#include "greenmoe/hf/hf_config.h"

namespace greenmoe::hf {

struct Architecture {
    const char* model_type;
    // Fills what is particular to the architecture; the common keys (sizes, norm epsilon,
    // rope theta, tied embeddings) are read before, rope scaling and per-layer expert counts
    // after.
    void (*describe)(const ConfigReader& config, ModelConfig& model);
};

const std::vector<Architecture>& architectures();
const Architecture* find_architecture(const std::string& model_type);

}  // namespace greenmoe::hf

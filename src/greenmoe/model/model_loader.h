// Loading a model for evaluation, generation or further training from whatever the user
// points at.
#pragma once

#include <filesystem>
#include <memory>

#include "greenmoe/model/gpt.h"
#include "greenmoe/model/gpt_config.h"

namespace greenmoe {

// Where a model's weights are and in which layout.
struct ModelSource {
    std::filesystem::path weights;  // a .safetensors file, or a Hugging Face folder
    bool greenmoe = false;          // greenmoe's layout (else Hugging Face GPT-2's)
};

// `path` is a greenmoe run folder (its latest checkpoint), a checkpoint folder, a
// `greenmoe simplify` output folder, a greenmoe model.safetensors, or a Hugging Face GPT-2
// folder / .safetensors file. Throws Error naming `path` otherwise.
ModelSource find_model_source(const std::filesystem::path& path);
GptConfig read_model_config(const ModelSource& source);
// Parameters, and for greenmoe models the loss-free balancing bias: in the model file (a
// simplified model) or in the optimizer state beside it (a checkpoint).
void load_model_weights(const ModelSource& source, GptModel& model);

// The model at `path` (as find_model_source), with activations for max_batch × max_seq
// (max_seq 0 = block_size), in evaluation mode.
std::unique_ptr<GptModel> load_model(const std::filesystem::path& path, int max_batch,
                                     int max_seq = 0);

}  // namespace greenmoe

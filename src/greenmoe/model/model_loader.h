// Loading a model for evaluation or generation from whatever the user points at.
#pragma once

#include <filesystem>
#include <memory>

#include "greenmoe/model/gpt.h"

namespace greenmoe {

// `path` is a greenmoe run folder (its latest checkpoint), a checkpoint folder, a greenmoe
// model.safetensors, or a Hugging Face GPT-2 folder / .safetensors file. The model gets
// activations for max_batch × max_seq (max_seq 0 = block_size) and evaluation mode. A
// checkpoint's loss-free balancing bias (in its optimizer.safetensors) is loaded too.
std::unique_ptr<GptModel> load_model(const std::filesystem::path& path, int max_batch,
                                     int max_seq = 0);

}  // namespace greenmoe

// Where a run folder's checkpoints are: the files every layer that loads a model (training,
// evaluation, conversion, simplification) finds the same way.
#pragma once

#include <filesystem>
#include <optional>

namespace greenmoe {

// The folder <run_dir>/checkpoints/latest names, if the run has one.
std::optional<std::filesystem::path> latest_checkpoint(const std::filesystem::path& run_dir);

// A checkpoint folder, a run folder (its latest checkpoint) or a weights .safetensors.
std::filesystem::path resolve_checkpoint_weights(const std::filesystem::path& path);

}  // namespace greenmoe

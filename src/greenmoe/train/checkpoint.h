// Training checkpoints: a folder per save (weights, optimizer moments, JSON state) that
// appears atomically, a "latest" pointer, and pruning of old saves.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/io/checkpoint_paths.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/train/adamw.h"
#include "greenmoe/train/data_loader.h"

namespace greenmoe {

struct TrainState {
    int64_t step = 0;  // optimizer steps completed
    DataPosition data;
    int64_t tokens_seen = 0;
    double train_seconds = 0.0;  // time spent in training steps so far, across resumes
    nlohmann::json config;       // the full TrainConfig as JSON
    nlohmann::json extra = nlohmann::json::object();  // state of later subsystems
};

// Publishes a checkpoint of step `step` atomically, for any kind of run: `write` fills a
// temporary folder (checkpoints/.tmp_step_N_PID, synced when it returns), which is renamed
// to checkpoints/step_N (replacing a save of the same step, i.e. a rerun after a crash);
// then checkpoints/latest points at it and all but the newest `keep` saves go. Returns the
// folder.
std::filesystem::path publish_checkpoint(
    const std::filesystem::path& run_dir, int64_t step, int keep,
    const std::function<void(const std::filesystem::path& tmp_dir)>& write);

// The optimizer's moments as tensors "m.<name>" and "v.<name>", one pair per parameter of
// `layout`, for optimizer.safetensors (pointing into the optimizer: write before a step).
std::vector<TensorToWrite> adam_moment_tensors(const ParamLayout& layout, const AdamW& optimizer);

// Writes <run_dir>/checkpoints/step_<N>/{model.safetensors, optimizer.safetensors,
// state.json} through a temporary folder renamed into place, then points
// <run_dir>/checkpoints/latest at it and removes all but the newest `keep` saves.
std::filesystem::path save_checkpoint(const std::filesystem::path& run_dir, const GptModel& model,
                                      const AdamW& optimizer, const TrainState& state, int keep);

// Removes the temporary folders (checkpoints/.tmp_step_*) of saves that never finished (a
// process killed while saving); returns how many. Only safe while holding the run's lock
// (RunLock): another process may be writing one.
int remove_unfinished_checkpoints(const std::filesystem::path& run_dir);

// Reads state.json of a checkpoint folder (validated: errors name the file and field).
TrainState read_train_state(const std::filesystem::path& checkpoint_dir);

// Loads weights (and moments, if optimizer is non-null) into objects built from the same
// config; returns the state.
TrainState load_checkpoint(const std::filesystem::path& checkpoint_dir, GptModel& model,
                           AdamW* optimizer);

}  // namespace greenmoe

// The MoEITS similarity matrices of a model's layers (spec §2), computed or read from a cache
// of .npy files keyed to the model files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "greenmoe/moeits/model_adapter.h"

namespace greenmoe::moeits {

// Each MoE layer's M (E×E row-major), from `cache_dir` where a layer's key matches this model
// and kind weights, else computed with layer_similarity and stored there. `reused[i]` tells
// which came from the cache. An empty cache_dir disables caching.
std::vector<std::vector<double>> layer_similarities(const MoeModel& model,
                                                    const std::filesystem::path& cache_dir,
                                                    bool show_progress, uint64_t memory_budget,
                                                    std::vector<bool>* reused = nullptr);

// The model files' names, sizes, mtimes and header hashes (part of every cache key).
nlohmann::json model_identity(const MoeModel& model);

// The key a cached M must match: the model's identity, the layer, its expert count, matrix
// kinds and weights.
nlohmann::json nmi_cache_key(const MoeModel& model, const MoeLayer& layer);
nlohmann::json nmi_cache_key(const MoeModel& model, const MoeLayer& layer,
                             const nlohmann::json& identity);

// Writes M as <dir>/layer_<L>.npy, then its key as layer_<L>.json (a key is only ever beside
// the matrix it describes).
void write_nmi_cache(const std::filesystem::path& dir, const MoeLayer& layer,
                     const nlohmann::json& key, const std::vector<double>& M);

}  // namespace greenmoe::moeits

// Everything a training run is configured by, read from a preset (configs/*.json) plus
// --set overrides, and stored in every checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/model/gpt_config.h"
#include "greenmoe/train/adamw.h"

namespace greenmoe {

struct TrainConfig {
    GptConfig model;

    // "train": optimisation.
    int batch_size = 8;              // B, sequences per micro-batch
    int seq_len = 256;               // T
    int64_t total_batch_tokens = 0;  // tokens per optimizer step; 0 = B·T (no accumulation)
    int64_t max_steps = 1000;
    float lr = 6e-4f;
    float min_lr_ratio = 0.1f;
    int64_t warmup_steps = 100;
    AdamWConfig adamw;
    float grad_clip = 1.0f;  // 0 disables clipping
    uint64_t seed = 1337;
    int64_t log_every = 1;

    // "eval": validation and samples.
    int64_t val_every = 100;     // 0 = never
    int64_t val_tokens = 32768;  // tokens of validation data scored each time
    int64_t sample_every = 0;    // 0 = never
    int sample_tokens = 64;
    int top_k = 50;
    float temperature = 1.0f;
    std::string sample_prompt = "";  // empty: start from <|endoftext|>
    // HellaSwag during training: every N steps and at the end (0 = never), on the first
    // `hellaswag_limit` items (0 = all 10,042) of `hellaswag_data` (a file or folder; empty:
    // the data folder, the cache, then a download).
    int64_t hellaswag_every = 0;
    int64_t hellaswag_limit = 0;
    std::string hellaswag_data = "";

    // "checkpoint".
    int64_t checkpoint_every = 0;  // 0 = only at the end
    int keep_checkpoints = 2;

    // "data": a named dataset, or shard patterns prepared elsewhere.
    std::string dataset = "tinyshakespeare";
    std::string train_data;  // shard pattern; overrides dataset
    std::string val_data;

    int grad_accum_steps(int world = 1) const;  // throws Error if not a whole number
    void validate() const;                      // throws Error naming the field
    // Settings that are allowed but probably not meant (warmup_steps > max_steps), one
    // sentence each.
    std::vector<std::string> warnings() const;
};

// One setting that differs between two configs (as train_config_to_json writes them):
// "section.key" and its two values (null where a config lacks the key).
struct ConfigChange {
    std::string key;
    nlohmann::json before, after;
};
std::vector<ConfigChange> config_changes(const nlohmann::json& before, const nlohmann::json& after);
// "train.max_steps was 20, now 40; train.lr was 0.0006, now 0.001"
std::string describe_changes(const std::vector<ConfigChange>& changes);

nlohmann::json train_config_to_json(const TrainConfig& c);
// Reads sections "model", "train", "eval", "checkpoint", "data" over the defaults;
// unknown keys are errors.
TrainConfig train_config_from_json(const nlohmann::json& j);

// Loads a preset file and applies "section.key=value" overrides (value parsed as JSON,
// or taken as a string if it is not JSON). Errors name the file or the override.
nlohmann::json load_config_json(const std::string& path, const std::vector<std::string>& sets);
void apply_override(nlohmann::json& j, const std::string& assignment);
// Both: the TrainConfig of a preset with overrides. An error in a value given by --set is a
// command-line error (UsageError, exit status 2); one in the preset file stays a data error.
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& sets);

}  // namespace greenmoe

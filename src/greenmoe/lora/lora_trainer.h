// LoRA fine-tuning of a Hugging Face model on instruction data (MoEITS heals pruned models so):
// the settings of such a run, and the loop that trains the adapters into a run folder with
// checkpoints, exact resume, logs, energy, and the final PEFT adapter (optionally merged).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/energy/energy_options.h"
#include "greenmoe/lora/instruction_data.h"
#include "greenmoe/lora/lora_spec.h"
#include "greenmoe/train/adamw.h"

namespace greenmoe::lora {

// The optimisation settings of a LoRA run. Keys and sections are the full trainer's ("train",
// "checkpoint"); the defaults are those of Hugging Face's Trainer as the MoEITS authors use
// it: lr 2e-4, cosine to 0 after 5 % warm-up, AdamW 0.9 / 0.999 / 1e-8 without weight decay.
struct LoraTrainConfig {
    int batch_size = 4;              // sequences per micro-batch
    int seq_len = 512;               // tokens per sequence
    int64_t total_batch_tokens = 0;  // tokens per optimizer step; 0 = batch_size · seq_len
    int64_t max_steps = 500;
    float lr = 2e-4f;
    float min_lr_ratio = 0.0f;
    int64_t warmup_steps = -1;   // −1: warmup_ratio of max_steps (rounded up, as HF does)
    double warmup_ratio = 0.05;  // used when warmup_steps is −1
    AdamWConfig adamw{0.9f, 0.999f, 1e-8f, 0.0f};
    float grad_clip = 1.0f;  // 0: none
    uint64_t seed = 42;      // adapter init, the order of the data, dropout
    int64_t log_every = 1;
    int64_t checkpoint_every = 0;  // 0: only at the end (and when stopped)
    int keep_checkpoints = 2;

    int grad_accum_steps() const;  // Error unless a whole number
    int64_t warmup() const;        // warm-up steps in effect
    void validate() const;         // Error naming the key
    std::vector<std::string> warnings() const;
};

// {"train": {…}, "checkpoint": {…}} as the run's config.json and state.json hold them.
nlohmann::json lora_train_config_to_json(const LoraTrainConfig& c);
// Reads those sections over the defaults; unknown keys are errors, and so are the sections a
// LoRA run has no use for (model: the weights are the base's; data: --data; eval).
LoraTrainConfig lora_train_config_from_json(const nlohmann::json& j);
// A preset file (may be empty: the defaults) with --set overrides. A bad --set, or one of a
// section LoRA runs do not have, is a UsageError naming it.
LoraTrainConfig load_lora_train_config(const std::string& preset,
                                       const std::vector<std::string>& sets);

struct LoraTrainOptions {
    std::filesystem::path out_dir;  // the run folder
    // The Hugging Face model folder (config.json + safetensors), as given: the adapters'
    // base_model_name_or_path. Empty with `adapter`: the base that adapter names.
    std::string base_model;
    std::string tokenizer;  // tokenizer.json or its folder; empty: the base folder's
    // New adapters (--lora), or an existing PEFT adapter to train on (--adapter; its own r,
    // alpha, dropout and targets): exactly one of the two.
    std::optional<LoraSpec> spec;
    std::string adapter;
    std::vector<std::string> data_files;           // instruction JSONL files, in order
    InstructionDataOptions data;                   // seq_len comes from the config
    bool merge = false;                            // also write OUT/merged: base + adapter
    bool resume = true;                            // continue from the latest checkpoint of out_dir
    std::vector<std::string> resume_with_changes;  // as the full trainer takes them
    bool move_old_run = false;                     // with resume = false
    int64_t stop_at_step = -1;                     // save and stop after this many steps
    bool quiet = false;
    EnergyOptions energy;
};

struct LoraTrainSummary {
    int64_t steps_done = 0;
    double final_train_loss = 0.0;
    double energy_joules = 0.0;  // the whole run's (all segments), PUE included
    double co2e_g = 0.0;
    double tokens_per_second = 0.0;
    std::filesystem::path last_checkpoint;
    std::filesystem::path adapter_dir;  // OUT/adapter once the run is complete
    std::filesystem::path merged_dir;   // OUT/merged with merge
    int stop_signal = 0;                // SIGINT / SIGTERM that ended the run early, else 0
    std::filesystem::path moved_old_run;
};

// Sets up (base memory-mapped and frozen, tokenizer, data, adapters, AdamW), resumes or
// starts, trains max_steps steps of the step's mean loss (HF Trainer's num_items_in_batch),
// then writes OUT/adapter (and OUT/merged). Stops cleanly on SIGINT / SIGTERM.
LoraTrainSummary train_lora(const LoraTrainConfig& config, const LoraTrainOptions& options);

// True when `run_dir`'s latest checkpoint or config.json is a LoRA run's: the full trainer
// must not resume it (and train_lora refuses a full run's folder).
bool is_lora_run(const std::filesystem::path& run_dir);

}  // namespace greenmoe::lora

// The training loop: data, model, AdamW with warm-up + cosine schedule, gradient
// accumulation and clipping, validation, samples, checkpoints, exact resume, logs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/dist/communicator.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/train/datasets.h"
#include "greenmoe/train/train_config.h"

namespace greenmoe {

struct TrainOptions {
    std::filesystem::path out_dir;  // the run folder
    DataLocations data;
    // Starting weights: anything load_model accepts (a run, checkpoint or simplified model
    // folder, greenmoe weights, Hugging Face GPT-2); empty = random init. Their model
    // settings replace the config's, except the routing and loss knobs (capacity factors,
    // auxiliary weights, bias_gamma) named in model_keys_set.
    std::string init_from;
    // The model keys the command line set (--set model.KEY=…, KEY alone). With init_from,
    // one that fixes what the weights are (n_layer, mlp, …) must agree with them.
    std::vector<std::string> model_keys_set;
    // The preset the config came from, for messages ("" = the built-in defaults).
    std::string preset;
    bool resume = true;  // continue from out_dir's latest checkpoint when there is one
    // Settings ("section.key", or a whole "section") that may differ from the checkpoint's
    // when resuming; any other difference refuses to resume, naming each one.
    std::vector<std::string> resume_with_changes;
    // With resume = false, a folder holding an earlier run is refused, or with this its
    // files first move to <out_dir>.old-N, so that two runs' checkpoints never mix.
    bool move_old_run = false;
    // Refuse, before allocating, a configuration estimated to need more memory than the
    // machine has.
    bool check_memory = true;
    int64_t stop_at_step = -1;  // save and stop once this many steps are done (< max_steps)
    bool quiet = false;         // no console progress lines
    // Energy and CO2e: measured or estimated per segment, logged at every log step and
    // appended to <out_dir>/emissions.csv at the end of each segment.
    EnergyOptions energy;
    // Data-parallel ranks (null: this process alone). Each rank trains on its share of
    // every step's micro-batches; the gradient is summed over ranks before the update.
    Communicator* comm = nullptr;
    bool shard_optimizer = false;       // ZeRO stage 1: each rank keeps its shard's moments
    bool overlap_communication = true;  // sum each block's gradient as soon as it is done
};

struct TrainSummary {
    int64_t steps_done = 0;
    double final_train_loss = 0.0;
    double final_val_loss = -1.0;            // -1 when no validation ran
    double final_hellaswag_acc_norm = -1.0;  // -1 when HellaSwag never ran
    double energy_joules = 0.0;              // the whole run's (all segments), PUE included
    double co2e_g = 0.0;
    double tokens_per_second = 0.0;
    std::filesystem::path last_checkpoint;
    // SIGINT or SIGTERM when one ended the run early (after a checkpoint, the log and the
    // emissions row): the command exits 128 + it. 0 otherwise.
    int stop_signal = 0;
    std::filesystem::path moved_old_run;  // where --move-old-run put an earlier run
};

// Set up, resume (or initialize), then per step: evaluations that are due, micro-batches,
// update, log and checkpoint; stops early and cleanly on SIGINT / SIGTERM.
TrainSummary train(const TrainConfig& config, const TrainOptions& options);

// Bytes that training `model` on batches of batch × seq takes: parameters, gradients,
// AdamW moments and activations (an estimate, within tens of percent).
double estimate_training_bytes(const GptConfig& model, int batch, int seq);

}  // namespace greenmoe

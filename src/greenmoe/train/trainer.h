// The training loop: data, model, AdamW with warm-up + cosine schedule, gradient
// accumulation and clipping, validation, samples, checkpoints, exact resume, logs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "greenmoe/dist/communicator.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/train/datasets.h"
#include "greenmoe/train/train_config.h"

namespace greenmoe {

struct TrainOptions {
    std::filesystem::path out_dir;  // the run folder
    DataLocations data;
    // Starting weights: anything load_model accepts (a run, checkpoint or simplified model
    // folder, greenmoe weights, Hugging Face GPT-2); empty = random init.
    std::string init_from;
    bool resume = true;         // continue from out_dir's latest checkpoint when there is one
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
};

TrainSummary train(const TrainConfig& config, const TrainOptions& options);

}  // namespace greenmoe

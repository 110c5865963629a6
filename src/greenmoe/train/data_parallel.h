// The pieces of data-parallel training that talk across ranks: gradient sums overlapped
// with the backward pass, global MoE statistics, the run state sent from the root, the
// optimizer shards of ZeRO stage 1, and energy summed over hosts.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/dist/communicator.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/train/checkpoint.h"
#include "greenmoe/train/moe_step_stats.h"

namespace greenmoe {

// Sums the gradient over ranks. With overlap, each block's gradient starts on its way as
// soon as the backward pass has finished it (block_done, passed to GptModel::backward on
// the last micro-step) while the blocks below are still computed; finish() waits for all.
// Without, finish() sums the whole buffer at once.
class GradientSync {
  public:
    GradientSync(Communicator& comm, GptModel& model, bool overlap);
    // For GptModel::backward; empty when there is nothing to overlap (one rank, or off).
    std::function<void(int)> block_done();
    void finish();

  private:
    Communicator& comm_;
    GptModel& model_;
    bool overlap_;
    std::vector<std::pair<size_t, size_t>> blocks_;  // each block's flat range
    std::vector<std::pair<size_t, size_t>> rest_;    // flat ranges outside every block
};

// Sums one step's routing statistics and the loss-free bias counts over ranks, so the log
// and the bias see every rank's tokens.
void all_reduce_moe_stats(Communicator& comm, GptModel& model, MoeStepStats& stats);

// The root's run state (step, data position, totals, Adam's step count) to every rank.
void broadcast_train_state(Communicator& comm, TrainState& state, int64_t& adam_step);

// Flat offsets of each rank's optimizer shard: an even split of the parameters, on
// 16-float boundaries so that each shard's loops start aligned.
std::vector<size_t> optimizer_shards(size_t total_floats, int ranks);

// Energy of the whole job: every rank's measurement of its share, summed. Host-wide
// counters (RAPL, NVML) are counted by one rank per host only; estimates cover each
// process's own usage, so every rank's counts.
struct JobEnergy {
    double joules_with_pue = 0.0;
    double co2e_g = 0.0;
    std::vector<double> joules_per_rank;  // with PUE
    EnergyMeasurement total;              // the root's measurement with the sums put in
};
JobEnergy sum_energy(Communicator& comm, const EnergyMeasurement& mine);

}  // namespace greenmoe

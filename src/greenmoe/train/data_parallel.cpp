// Data-parallel training across ranks (see data_parallel.h).
#include "greenmoe/train/data_parallel.h"

#include <array>

#include "greenmoe/core/error.h"

namespace greenmoe {

GradientSync::GradientSync(Communicator& comm, GptModel& model, bool overlap)
    : comm_(comm), model_(model), overlap_(overlap && comm.size() > 1) {
    for (int l = 0; l < model.config().n_layer; ++l) blocks_.push_back(model.block_grad_range(l));
    rest_ = {{0, blocks_.front().first}, {blocks_.back().second, model.layout().total_floats()}};
}

std::function<void(int)> GradientSync::block_done() {
    if (!overlap_) return {};
    return [this](int block) {
        float* g = model_.grads();
        if (block >= 0) {
            const auto [first, end] = blocks_[size_t(block)];
            comm_.start_all_reduce_sum({g + first, end - first});
        } else {
            for (const auto& [first, end] : rest_) {
                if (end > first) comm_.start_all_reduce_sum({g + first, end - first});
            }
        }
        // MPI moves the sums along only inside its calls.
        comm_.progress();
    };
}

void GradientSync::finish() {
    if (comm_.size() == 1) return;
    if (overlap_) {
        comm_.finish_pending("the gradient sum");
    } else {
        comm_.all_reduce_sum({model_.grads(), model_.layout().total_floats()}, "the gradient sum");
    }
}

void all_reduce_moe_stats(Communicator& comm, GptModel& model, MoeStepStats& stats) {
    if (comm.size() == 1 || model.num_moe_layers() == 0) return;
    // Doubles and counts in one message each: the losses and entropy, then the counts.
    std::vector<double> sums;
    std::vector<int64_t> counts;
    for (const MoeForwardStats& s : stats.layers) {
        sums.insert(sums.end(), {s.aux_load, s.aux_importance, s.aux_z, s.aux_penalty, s.entropy});
        counts.push_back(static_cast<int64_t>(s.choices));
        counts.push_back(static_cast<int64_t>(s.dropped));
        counts.insert(counts.end(), s.counts.begin(), s.counts.end());
    }
    std::vector<int64_t>& bias_counts = model.mutable_moe_counts();
    counts.insert(counts.end(), bias_counts.begin(), bias_counts.end());
    comm.all_reduce_sum(std::span<double>(sums), "the MoE statistics");
    comm.all_reduce_sum(std::span<int64_t>(counts), "the MoE statistics");
    size_t d = 0, c = 0;
    for (MoeForwardStats& s : stats.layers) {
        s.aux_load = sums[d++];
        s.aux_importance = sums[d++];
        s.aux_z = sums[d++];
        s.aux_penalty = sums[d++];
        s.entropy = sums[d++];
        s.choices = counts[c++];
        s.dropped = counts[c++];
        for (auto& n : s.counts) n = counts[c++];
    }
    for (auto& n : bias_counts) n = counts[c++];
    // Per-layer means in the log divide by the micro-steps: now every rank's.
    stats.micro *= comm.size();
}

void broadcast_train_state(Communicator& comm, TrainState& state, int64_t& adam_step) {
    if (comm.size() == 1) return;
    std::string text;
    if (comm.is_root()) {
        text = nlohmann::json{{"step", state.step},
                              {"shard", state.data.shard},
                              {"offset", state.data.offset},
                              {"epoch", state.data.epoch},
                              {"tokens_seen", state.tokens_seen},
                              {"train_seconds", state.train_seconds},
                              {"extra", state.extra},
                              {"adam_step", adam_step}}
                   .dump();
    }
    comm.broadcast(text, "the run state");
    const auto j = nlohmann::json::parse(text);
    state.step = j.at("step").get<int64_t>();
    state.data.shard = j.at("shard").get<size_t>();
    state.data.offset = j.at("offset").get<size_t>();
    state.data.epoch = j.at("epoch").get<uint64_t>();
    state.tokens_seen = j.at("tokens_seen").get<int64_t>();
    state.train_seconds = j.at("train_seconds").get<double>();
    state.extra = j.at("extra");
    adam_step = j.at("adam_step").get<int64_t>();
}

std::vector<size_t> optimizer_shards(size_t total_floats, int ranks) {
    std::vector<size_t> offsets(static_cast<size_t>(ranks) + 1, total_floats);
    offsets[0] = 0;
    for (int r = 1; r < ranks; ++r) {
        const size_t even = total_floats * static_cast<size_t>(r) / static_cast<size_t>(ranks);
        offsets[size_t(r)] = std::max(offsets[size_t(r) - 1], even / 16 * 16);
    }
    return offsets;
}

JobEnergy sum_energy(Communicator& comm, const EnergyMeasurement& mine) {
    // This rank's share: all of it, less host-wide counters another rank on the host reads.
    static constexpr std::array<const char*, 3> kSources = {"cpu", "ram", "gpu"};
    double excluded = 0.0;
    std::vector<double> share(kSources.size() + 4, 0.0);
    for (size_t i = 0; i < kSources.size(); ++i) {
        const auto it = mine.joules.find(kSources[i]);
        if (it == mine.joules.end()) continue;
        const auto measured = mine.source_measured.find(kSources[i]);
        const bool host_wide = measured != mine.source_measured.end() && measured->second;
        if (host_wide && !comm.host_leader()) {
            excluded += it->second;
        } else {
            share[i] = it->second;
        }
    }
    // The PUE and carbon scale with the energy, so the share of those follows the share
    // of the hardware energy (exact when every source has the same PUE, as by default).
    const double kept = mine.total_joules > 0 ? 1.0 - excluded / mine.total_joules : 1.0;
    const size_t k = kSources.size();
    share[k] = mine.total_joules - excluded;
    share[k + 1] = mine.total_joules_with_pue * kept;
    share[k + 2] = mine.kwh * kept;
    share[k + 3] = mine.co2e_g * kept;

    const std::vector<double> all = comm.all_gather(share, "the energy totals");
    JobEnergy job;
    job.total = mine;
    std::vector<double> sum(share.size(), 0.0);
    for (int r = 0; r < comm.size(); ++r) {
        const double* row = all.data() + size_t(r) * share.size();
        for (size_t i = 0; i < share.size(); ++i) sum[i] += row[i];
        job.joules_per_rank.push_back(row[k + 1]);
    }
    for (size_t i = 0; i < k; ++i) {
        if (sum[i] > 0 || job.total.joules.count(kSources[i])) {
            job.total.joules[kSources[i]] = sum[i];
        }
    }
    job.total.total_joules = sum[k];
    job.total.total_joules_with_pue = sum[k + 1];
    job.total.kwh = sum[k + 2];
    job.total.co2e_g = sum[k + 3];
    job.total.pue = sum[k] > 0 ? sum[k + 1] / sum[k] : 1.0;
    job.joules_with_pue = sum[k + 1];
    job.co2e_g = sum[k + 3];
    return job;
}

}  // namespace greenmoe

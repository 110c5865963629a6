// `greenmoe prune-study`: every criterion at every budget on one model, each pruned model
// evaluated the same way, resumable, in one table and one accuracy-against-pruning plot.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/eval/language_model.h"
#include "greenmoe/eval/tasks/tasks.h"
#include "greenmoe/moeits/criteria/criterion.h"

namespace greenmoe::moeits {

struct PruneStudyOptions {
    std::filesystem::path model;  // the model every criterion prunes
    std::filesystem::path out;    // the study folder (created; an earlier study's resumed)
    std::vector<Criterion> criteria;
    std::vector<double> reduce_percents;  // budgets: % of expert parameters removed
    std::vector<std::string> tasks;       // harness task names
    tasks::TaskOptions task_options;      // data folders, shots, limit
    std::string calibration_data;         // for frequency, ean, reap, naee
    int64_t calibration_tokens = 16384;
    int calibration_sequence_length = 0;
    uint64_t seed = 0;  // random
    bool show_progress = true;
    std::function<void(const std::string&)> log;  // report lines; default: stdout
    // The inference benchmark of every model (greenmoe bench's protocol, no energy meter):
    // prompt and generated tokens per sequence, warm-up and measured runs. Off: no figures.
    bool benchmark = true;
    int bench_prompt_tokens = 32, bench_new_tokens = 32, bench_warmup = 1, bench_repeats = 3;
    // Stops (as an interruption would) after this many cells have been computed in this run;
    // 0: never. For tests of resuming.
    int stop_after_cells = 0;
};

// One row of the study: the unpruned model (criterion "none", 0 %) or one pruned model.
struct PruneStudyCell {
    std::string criterion;
    double reduce_percent = 0.0;
    double expert_reduction_percent = 0.0;  // what the pruning removed
    nlohmann::json scores;                  // {task: accuracy}
    nlohmann::json benchmark;               // the inference benchmark's figures (null: none)
    bool reused = false;                    // finished by an earlier run
};

struct PruneStudyResult {
    std::vector<PruneStudyCell> cells;
    int computed = 0, reused = 0;
    bool stopped = false;  // stop_after_cells ended the run early
    std::filesystem::path table, plot;
};

PruneStudyResult run_prune_study(const PruneStudyOptions& options);

// The inference benchmark of one model (greenmoe bench's protocol at batch 1): time to first
// token, tokens/s, peak-free timings as `bench` reports them; null when options.benchmark is
// off.
nlohmann::json measure_inference(const LanguageModel& model, const PruneStudyOptions& options);

}  // namespace greenmoe::moeits

// report.html's models view: every model `greenmoe bench` measured, side by side with its
// quality from `greenmoe eval` results found beside it, and Pareto plots of quality and speed
// against energy, memory and parameters, and of accuracy against the experts pruned.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "greenmoe/bench/bench_results.h"

namespace greenmoe::report {

// One measured model at the view's batch size.
struct ModelEntry {
    BenchRow bench;
    std::string label;                            // short and unique within the view
    std::map<std::string, double> task_accuracy;  // task → acc_norm where present, else acc
    std::optional<double> accuracy;               // mean over the tasks every model has
    std::vector<std::string> eval_files;          // where the accuracies came from
};

struct ModelsView {
    int batch = 0;  // the batch size the plots and the table show
    std::vector<ModelEntry> models;
    std::vector<std::string> tasks;  // the tasks `accuracy` averages (common to all evaluated)
    std::vector<std::string> warnings;
};

// The accuracy per task of one `greenmoe eval --json` file: lm-evaluation-harness layout
// (results → task → "acc_norm,none" / "acc,none"; group rows of MMLU's subjects left out in
// favour of the group) or greenmoe's HellaSwag layout (task, acc_norm). Error naming the file
// when it is neither.
std::map<std::string, double> read_eval_accuracies(const std::filesystem::path& file);

// The view of bench rows at `batch` (0: the smallest batch size any row has): failed rows
// kept (the table shows their errors), quality from MODEL/eval*.json of each model and from
// `eval_files` (each matched to the model it evaluated by model_absolute; Error when it
// matches none).
ModelsView build_models_view(const std::vector<BenchRow>& rows, int batch,
                             const std::vector<std::filesystem::path>& eval_files = {});

// The page: a table with id "models" (one row per model), then plots with ids plot-acc-energy
// (accuracy against J/token), plot-speed-energy (decode tokens/s against J/token),
// plot-acc-memory (against peak RSS), plot-acc-params (against parameters), each with its
// Pareto front's points marked data-front="1" and joined by a line (class "front"), and
// plot-acc-pruned (accuracy against % of experts pruned, a series per criterion). A plot
// without data is named as not recorded instead.
std::string render_models_html(const ModelsView& view, const std::string& title);

}  // namespace greenmoe::report

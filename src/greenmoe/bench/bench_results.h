// The rows `greenmoe bench` writes (one per model × batch size), their JSON and CSV forms, the
// reductions against the baseline model, and reading them back for `greenmoe report`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace greenmoe {

// What one model costs at one batch size under the bench protocol. Times are means over the
// measured repeats; energy is over the measured window of each run (prefill to last token),
// averaged over the repeats. Energy figures include the PUE, as emissions.csv's do.
struct BenchRow {
    std::string model;           // as given on the command line
    std::string model_absolute;  // for finding its eval results and simplify summary
    bool baseline = false;
    int batch = 0;
    bool ok = true;
    std::string error;  // why a model failed to load or run (ok false)

    // The protocol.
    int prompt_tokens = 0;  // per sequence, exact (prompts truncated or padded)
    int new_tokens = 0;     // per sequence, exact (greedy, no stop at EOS)
    int warmup = 0, repeats = 0;
    int64_t prompt_tokens_per_run = 0;     // batch × prompt_tokens, counted
    int64_t generated_tokens_per_run = 0;  // batch × new_tokens, counted

    // Latency and throughput.
    double ttft_s = 0.0;  // time to first token: the prefill step and its greedy pick
    double itl_mean_s = 0.0, itl_p50_s = 0.0, itl_p90_s = 0.0;  // between tokens, all runs
    double run_s = 0.0;                                         // prefill to last token
    double prefill_tokens_per_s = 0.0;                          // prompt tokens per run / ttft
    double decode_tokens_per_s = 0.0;  // tokens after the first / (run − ttft)

    // Energy of one run's window.
    double window_s = 0.0;  // the monitor's clock
    double energy_j = 0.0;  // with PUE
    double j_per_token = 0.0;
    double j_per_response = 0.0;
    double average_power_w = 0.0;  // hardware energy / window, no PUE
    double co2e_g_per_1000_responses = 0.0;
    bool energy_measured = false;  // every source read from a hardware counter
    std::string energy_source;     // how: the monitor's label
    std::string location;
    double pue = 1.0;
    std::optional<double> idle_power_w;  // measured before any model ran; only from counters

    // Stability of the repeats.
    std::optional<double> cv_run_s, cv_energy_j;  // nullopt with fewer than two repeats
    double cv_threshold = 0.0;
    std::optional<bool> stable;  // both CVs ≤ threshold; nullopt when not judged

    // Memory and size.
    double peak_rss_bytes = 0.0;
    // "model": VmHWM reset before the model was opened; "process": the process's peak so far
    // (the reset is not available).
    std::string peak_rss_scope;
    int64_t parameters = 0, active_parameters = 0;
    std::vector<int> experts_per_layer;
    int top_k = 0;
    std::optional<double> experts_pruned_percent;  // routed experts removed, of the original's
    std::optional<double> expert_params_pruned_percent;  // from simplify's summary.json
    std::string criterion;                               // simplify's criterion, "" = none

    // 100 × (baseline − this) / baseline per figure, against the baseline's row of the same
    // batch size; a negative value means this model's figure is the higher one.
    std::map<std::string, double> reduction_percent;
};

// The figures whose reduction against the baseline is reported.
const std::vector<std::string>& reduction_figures();
// A figure of a row by the name reduction_figures() uses; nullopt for an unknown name.
std::optional<double> bench_figure(const BenchRow& row, const std::string& name);

// Fills reduction_percent of every ok row from the ok baseline row of the same batch size;
// rows without one get none.
void compute_reductions(std::vector<BenchRow>& rows);

nlohmann::ordered_json bench_row_json(const BenchRow& row);
// The inverse of bench_row_json; Error naming `where` when a field has the wrong type.
BenchRow bench_row_from_json(const nlohmann::json& j, const std::string& where);

// CSV: a header of the JSON's scalar fields, experts per layer joined by ';', reductions as
// reduction_<figure>_percent columns. Fields quoted where they hold , " or newlines.
std::string bench_csv(const std::vector<BenchRow>& rows);

// Rows of a bench.jsonl file, or of DIR/bench.jsonl for a folder; Error naming the file and
// line when one does not parse.
std::vector<BenchRow> read_bench_rows(const std::filesystem::path& path);

}  // namespace greenmoe

// A training run folder as the report reads it: log.jsonl records, emissions.csv rows,
// parent.json and `greenmoe eval --json` results.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace greenmoe::report {

// The energy fields a train or done record may carry (all absent in older logs).
struct EnergyFields {
    std::optional<double> energy_j;  // joules since the run began, all segments
    std::optional<double> co2e_g;    // grams CO2e since the run began
    std::optional<double> j_per_token;
    std::optional<double> pue;  // the PUE energy_j includes (absent in older logs)
    std::string source;         // "rapl", "nvml", "estimate"…; empty when not recorded
};

struct MoeLayerLoad {
    int layer = 0;     // block index
    std::string kind;  // "mlp" or "attn"
    std::vector<double> load;
    std::optional<double> dropped, load_cv, entropy;
};

// Steps are numbered as log_version 2 writes them: a train record's step is the optimizer
// step just done (1…N); val, eval and sample records carry the steps done when measured
// (0: before training). Logs without log_version numbered train records from 0: the
// reader adds 1 to them.
struct StartRecord {
    int64_t line = 0;  // 1-based line in log.jsonl
    int log_version = 1;
    std::string init_from;  // --init-from, when the run started from other weights
    int64_t resumed_from_step = 0;
    int64_t parameters = 0;
    int64_t tokens_per_step = 0;
    int64_t grad_accum_steps = 1;
    nlohmann::json config;  // the full TrainConfig as written ({} when absent)
};

struct TrainRecord {
    int64_t step = 0;
    double loss = 0.0;
    std::optional<double> lr, grad_norm, tokens_per_s, step_ms, train_seconds, aux_loss;
    std::optional<int64_t> tokens;
    EnergyFields energy;
    std::vector<MoeLayerLoad> moe;
};

struct ValRecord {
    int64_t step = 0;
    double val_loss = 0.0;
};

struct EvalRecord {
    int64_t step = 0;
    std::string task;
    std::optional<int64_t> items;
    std::optional<double> acc, acc_norm, harness_acc, harness_acc_norm, seconds;
    std::string file;  // the `greenmoe eval --json` file it came from; empty: log.jsonl
};

struct SampleRecord {
    int64_t step = 0;
    std::string text;
};

struct DoneRecord {
    int64_t step = 0;
    std::optional<double> train_loss, val_loss, train_seconds;
    std::optional<int64_t> tokens;
    EnergyFields energy;
};

// One row of a CodeCarbon emissions.csv (one per run segment).
struct EmissionsRow {
    std::map<std::string, std::string> fields;  // every column, by header name
    std::optional<double> duration_s, emissions_kg, energy_kwh;
};

struct RunData {
    std::string name;  // the folder's name
    std::filesystem::path folder;
    std::vector<StartRecord> starts;  // more than one when the run was resumed
    std::vector<TrainRecord> train;   // in step order
    std::vector<ValRecord> val;
    std::vector<EvalRecord> evals;
    std::vector<SampleRecord> samples;
    std::optional<DoneRecord> done;
    std::vector<EmissionsRow> emissions;  // empty when there is no emissions.csv
    // parent.json (--init-from): the starting weights, the run behind them and its cost.
    std::optional<nlohmann::json> parent;
    int64_t ignored_records = 0;        // records of a type this reader does not know
    std::vector<std::string> warnings;  // what was left out and why (a torn last line)
};

// Reads RUN/log.jsonl (required), RUN/emissions.csv, RUN/parent.json and RUN/eval*.json
// (`greenmoe eval --json` results; HellaSwag ones are added to `evals`), all optional.
// Throws Error naming the
// folder when it or its log is missing, and "FILE:LINE: …" for a malformed line or field;
// a torn last line (no end of line, not JSON: a write cut short) is left out with a warning
// in `warnings`.
// Records of one type whose step does not increase (a resumed segment repeating steps)
// replace the earlier ones from that step on.
RunData read_run(const std::filesystem::path& folder);

// Parses log.jsonl text into `run` (`file` names it in errors).
void parse_run_log(const std::string& text, const std::string& file, RunData& run);
// Adds a `greenmoe eval --json` result (`file` names it) to the run's evals when it is a
// HellaSwag one (returns false otherwise): at its "step" (a greenmoe checkpoint's), else at
// the run's last step. It replaces a logged evaluation of the same step. Error naming the
// file when its fields are not the types eval writes.
bool add_eval_result(RunData& run, const nlohmann::json& result, const std::string& file);

// Whether an eval --json result evaluated a model inside this run's folder (by its
// "weights" or "model_absolute" path).
bool eval_result_belongs_to(const RunData& run, const nlohmann::json& result);

// Parses emissions.csv text (RFC 4180 quoting, header row first).
std::vector<EmissionsRow> parse_emissions_csv(const std::string& text, const std::string& file);

// Summary figures of a run, from the log's last records with emissions.csv as fallback.
struct RunTotals {
    std::optional<double> energy_j, co2e_g;  // both include the PUE
    std::optional<double> pue;               // which one, when recorded
    std::optional<double> j_per_token;
    std::string energy_source;  // as logged, "emissions.csv", or empty
    bool measured = false;      // energy read from a meter (RAPL, NVML…), not estimated
    std::optional<double> final_train_loss, final_val_loss, train_seconds;
    std::optional<int64_t> tokens, last_step;
    std::optional<EvalRecord> last_eval;  // last HellaSwag eval with acc_norm
    std::optional<double> parent_co2e_g;  // what the --init-from weights cost (parent.json)
};
RunTotals run_totals(const RunData& run);

// Whether an energy_source names a measurement rather than an estimate.
bool energy_source_is_measured(const std::string& source);

}  // namespace greenmoe::report

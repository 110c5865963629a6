// Aggregation of a sweep's runs over seeds: per setting, each metric's mean with its 95 %
// confidence interval (Student t), and its difference from the baseline setting with the
// interval of that difference; written as CSV and as a console table.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "greenmoe/sweep/sweep_state.h"

namespace greenmoe::sweep {

// The figures summarised per run, in the order tables show them.
enum class Metric {
    ValLoss,           // final validation loss
    HellaSwagAccNorm,  // last HellaSwag acc_norm (the run's final evaluation): greenmoe's
                       // acc_norm as the report shows it, not lm-eval's harness_acc_norm
    Kwh,               // energy of the whole run, PUE included
    Gco2e,             // grams CO2e of the whole run
    TokensPerSecond,   // training tokens / training seconds
    JoulesPerToken,
    LoadCv,     // coefficient of variation of expert load, mean over routed layers (MoE runs)
    DroppedPct  // share of token choices dropped by capacity, % (switch, gshard)
};
inline constexpr Metric kAllMetrics[] = {
    Metric::ValLoss,         Metric::HellaSwagAccNorm, Metric::Kwh,    Metric::Gco2e,
    Metric::TokensPerSecond, Metric::JoulesPerToken,   Metric::LoadCv, Metric::DroppedPct};
std::string metric_id(Metric m);     // "val_loss", "hellaswag_acc_norm", "kwh", …
std::string metric_label(Metric m);  // "val loss", "HellaSwag acc_norm", "kWh", …

// A mean over n values and the half width of its 95 % interval: mean ± t(0.975, n-1)·s/√n.
// half_width is absent when n < 2 (one seed: no interval).
struct Estimate {
    int n = 0;
    double mean = 0.0;
    std::optional<double> half_width;
};

// One run's figures (absent where the run did not record them).
struct RunFigures {
    std::string name;
    std::vector<std::optional<double>> metrics;  // indexed like kAllMetrics
    uint64_t seed = 0;
};

struct SettingSummary {
    std::string setting;
    std::vector<std::pair<std::string, std::string>> values;  // axis → value label
    int runs_done = 0, runs_failed = 0, runs_unfinished = 0;
    std::vector<std::optional<Estimate>> metrics;  // indexed like kAllMetrics
    // This setting's mean minus the baseline's with the Welch interval of the difference;
    // absent for the baseline itself, or when either side has no value.
    std::vector<std::optional<Estimate>> diff_from_baseline;
    std::vector<RunFigures> runs;  // the finished runs it aggregates
};

struct SweepSummary {
    std::string baseline;  // setting name, "" = none
    std::vector<std::string> axes;
    std::vector<SettingSummary> settings;  // in the grid's order
};

// Reads DIR/sweep.json and every finished run's folder (report::read_run). A run counts as
// done when sweep.json says "done" and its log.jsonl has a done record; "done" without one
// (or without its folder), "pending" and "running" count as unfinished. Error naming the
// file when sweep.json or a finished run's log is malformed.
SweepSummary summarize_sweep(const std::filesystem::path& dir);

// The figures of one finished run (report::read_run of its folder): see Metric. Values the
// run did not record, or recorded as NaN / infinity, are absent.
RunFigures run_figures(const std::filesystem::path& run_folder);

// Mean of `values` with its 95 % Student t interval (half width absent for fewer than two
// values, 0 when they are all equal). Error when `values` is empty.
Estimate estimate_mean(const std::vector<double>& values);
// mean(values) − mean(baseline) with Welch's 95 % interval: se = √(s₁²/n₁ + s₂²/n₂),
// Welch–Satterthwaite df, half width t(0.975, df)·se; n = min(n₁, n₂). The half width is
// absent when either side has fewer than two values, and 0 when both sides' values are
// all equal (se = 0, where df is 0/0). Error when either is empty.
Estimate estimate_difference(const std::vector<double>& values,
                             const std::vector<double>& baseline);

// Quantile of Student's t distribution with `df` degrees of freedom (df > 0, not
// necessarily whole, as Welch's df is), p in (0, 1); Error otherwise. Relative accuracy
// about 1e-13 up to df = 1e4 (tests: scipy.stats.t.ppf); the incomplete beta's continued
// fraction loses about df·1e-16 beyond (5e-10 at df = 1e8). ±infinity where the quantile
// exceeds 1e300 (tiny df with p far out in a tail).
double student_t_quantile(double p, double df);

// Header row, then one row per setting: setting, one column per axis (named by its key),
// runs (finished), failed, then per metric in kAllMetrics order <id>_mean, <id>_ci95,
// <id>_diff, <id>_diff_ci95 (every metric, empty where absent: a stable header). Numbers in
// the shortest text that reads back as the same double; RFC 4180 quoting.
std::string summary_csv(const SweepSummary& summary);
// Fixed-width text: a row per setting with its seeds (and failed / unfinished runs where any)
// and "mean ± half width" per metric (the mean alone for one seed), then the differences from
// the baseline ("+0.012 ± 0.034"). Metrics no setting has are left out.
std::string summary_table(const SweepSummary& summary);

}  // namespace greenmoe::sweep

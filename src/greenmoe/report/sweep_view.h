// report.html's sweep view: one `greenmoe sweep` grid as a table of its settings (mean ± 95 %
// CI over seeds, differences from the baseline), the study's Figure 1 (HellaSwag against
// CO2e per setting, error bars both ways, Pareto front), the runs' loss curves overlaid and
// the runs that failed.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/report/run_data.h"
#include "greenmoe/sweep/sweep_state.h"
#include "greenmoe/sweep/sweep_summary.h"

namespace greenmoe::report {

// Whether DIR is a sweep folder (it holds sweep.json) rather than a run folder.
bool is_sweep_folder(const std::filesystem::path& dir);

// Which axes Figure 1 draws how: the variant axis as marker shapes ("model.mlp" when the grid
// has it, else "model.attn", else the first axis), the mechanism axis as colours
// ("mechanism" when the grid has it, else the first other axis; "" = one colour).
struct SweepEncoding {
    std::string shape_axis, color_axis;
};
SweepEncoding sweep_encoding(const std::vector<std::string>& axes);

// Figure 1 of a sweep as <svg id="plot-sweep-figure1">: a point (class "pt sweep-point") per
// setting with both figures, at the means of its runs' CO2e (x) and last HellaSwag acc_norm
// (y), with an error bar (class "error-bar") each way where the setting has a 95 % interval;
// the Pareto front (lower CO2e, higher acc_norm) marked data-front="1" and joined by a step
// line; a legend entry (class "legend-entry") per shape value, per colour value and for the
// front. The x axis is log10 when the means span over two decades.
std::string render_sweep_figure1(const sweep::SweepSummary& summary);

// The whole page: the settings table (id "sweep-summary"), Figure 1, the loss curves of
// `runs` (id "plot-sweep-loss", a colour per setting, validation dashed), and the failed
// (id "failed-runs") and unfinished runs of `state` with their errors. `runs` are the
// finished runs' folders as read; a run is matched to its setting by its folder's name.
std::string render_sweep_html(const sweep::SweepSummary& summary, const sweep::SweepState& state,
                              const std::vector<RunData>& runs, const std::string& title);

// Reads sweep folder DIR (sweep.json, the summary over its finished runs, their logs) and
// renders the page. Read warnings of the runs (a torn last line…) go to `warnings`.
struct SweepReport {
    std::string html;
    size_t settings = 0, runs_done = 0, runs_failed = 0;
    std::vector<std::string> warnings;
};
SweepReport build_sweep_report(const std::filesystem::path& dir, const std::string& title);

}  // namespace greenmoe::report

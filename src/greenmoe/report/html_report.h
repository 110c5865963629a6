// report.html: one self-contained page (inline CSS, SVG and a tiny script) on training runs.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "greenmoe/report/run_data.h"

namespace greenmoe::report {

// Shown wherever a CO2e figure is: the tables behind the estimate are CC BY 4.0.
inline constexpr const char* kGreenAlgorithmsCredit =
    "Green Algorithms (Lannelongue, Grealey & Inouye, Adv. Sci. 2021), CC BY 4.0";

struct ReportOptions {
    std::string title = "greenmoe training report";
    // Snapshots of the expert load over time per MoE run (0: only the last step).
    int load_snapshots = 6;
};

// The whole page: a card per run, the comparison table (id "comparison": parameters,
// tokens, val loss, HellaSwag, J/token, CO2e), then plots with ids: plot-loss,
// plot-hellaswag, plot-tokens-per-s, plot-energy, plot-co2e, plot-figure1 (several runs),
// plot-dropped and plot-load-cv (MoE runs, over steps), plot-load-R (run R's expert load at
// its last step) and plot-load-R-tK (its snapshots); a plot without data is left out and
// its place says "not recorded". On load the page's script sets body data-status="ok",
// data-points (number of .pt markers) and records script errors in data-errors.
std::string render_report_html(const std::vector<RunData>& runs, const ReportOptions& options = {});

// render_report_html written atomically to `path`.
void write_report_html(const std::vector<RunData>& runs, const std::filesystem::path& path,
                       const ReportOptions& options = {});

// The page every report is: <head> with the shared style, then the script that records script
// errors (body data-errors) and on load counts the plots' points (data-points, data-plots)
// and sets data-status="ok", then `body_html` inside <main>. `title` is plain text.
std::string html_page(const std::string& title, const std::string& body_html);

// Human-readable figures used on the page: 1.23M, 12 min 05 s, 12.3 kJ, 1.2 g.
std::string format_count(double v);
std::string format_duration(double seconds);
std::string format_energy(double joules);
std::string format_co2e(double grams);
// How every energy and CO2e figure says what it holds: "incl. PUE 1.58" (the data-centre
// overhead is in), "incl. PUE" when the value was not recorded (greenmoe always adds it).
std::string pue_note(const std::optional<double>& pue);

}  // namespace greenmoe::report

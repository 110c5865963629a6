// The sweep view of report.html (see sweep_view.h).
#include "greenmoe/report/sweep_view.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "greenmoe/report/html_report.h"
#include "greenmoe/report/pareto.h"
#include "greenmoe/report/svg_plot.h"

namespace greenmoe::report {
namespace {

namespace fs = std::filesystem;
using sweep::Estimate;
using sweep::Metric;
using sweep::SettingSummary;
using sweep::SweepSummary;

constexpr double kHellaSwagChance = 0.25;  // four endings per item
constexpr const char* kFrontColor = "#d1495b";
constexpr const char* kShapeColor = "#555555";

size_t metric_index(Metric m) {
    const auto* it = std::find(std::begin(sweep::kAllMetrics), std::end(sweep::kAllMetrics), m);
    return static_cast<size_t>(it - std::begin(sweep::kAllMetrics));
}

// Column headings with their units (the page's own: the console table has its own labels).
std::string metric_heading(Metric m) {
    switch (m) {
        case Metric::ValLoss:
            return "val loss";
        case Metric::HellaSwagAccNorm:
            return "HellaSwag acc_norm";
        case Metric::Kwh:
            return "energy (kWh, incl. PUE)";
        case Metric::Gco2e:
            return "CO2e (g, incl. PUE)";
        case Metric::TokensPerSecond:
            return "tokens/s";
        case Metric::JoulesPerToken:
            return "J/token";
        case Metric::LoadCv:
            return "load CV";
        case Metric::DroppedPct:
            return "dropped (%)";
    }
    return "?";
}

std::optional<Estimate> estimate_of(const SettingSummary& s, Metric m) {
    const size_t i = metric_index(m);
    if (i >= s.metrics.size()) return std::nullopt;
    return s.metrics[i];
}

std::optional<Estimate> diff_of(const SettingSummary& s, Metric m) {
    const size_t i = metric_index(m);
    if (i >= s.diff_from_baseline.size()) return std::nullopt;
    return s.diff_from_baseline[i];
}

bool has_interval(const Estimate& e) {
    return e.half_width && std::isfinite(*e.half_width);
}

// Fixed notation (never 1e+03) with `digits` significant digits.
std::string fixed_sig(double v, int digits = 4) {
    if (!std::isfinite(v)) return format_number(v);
    if (v == 0) return "0";
    const int mag = static_cast<int>(std::floor(std::log10(std::abs(v))));
    return fmt::format("{:.{}f}", v, std::clamp(digits - 1 - mag, 0, 12));
}

// "mean ± half width": the mean to the decimals of the half width's two significant digits.
std::string estimate_text(const Estimate& e, bool sign = false) {
    if (!has_interval(e)) {
        const std::string m = fixed_sig(e.mean);
        return sign && e.mean > 0 ? "+" + m : m;
    }
    const double hw = *e.half_width;
    if (!(hw > 0)) {
        // Seeds that agree exactly (a deterministic figure such as tokens per step).
        const std::string m = fixed_sig(e.mean);
        return (sign && e.mean > 0 ? "+" + m : m) + " ± 0";
    }
    const int decimals = std::clamp(1 - static_cast<int>(std::floor(std::log10(hw))), 0, 12);
    if (sign) return fmt::format("{:+.{}f} ± {:.{}f}", e.mean, decimals, hw, decimals);
    return fmt::format("{:.{}f} ± {:.{}f}", e.mean, decimals, hw, decimals);
}

// "switch" for an axis value, "model.mlp" → "mlp" for an axis.
std::string axis_short(const std::string& axis) {
    return axis.rfind("model.", 0) == 0 ? axis.substr(6) : axis;
}

std::string value_of(const SettingSummary& s, const std::string& axis) {
    for (const auto& [a, v] : s.values) {
        if (a == axis) return v;
    }
    return "";
}

// The distinct values of an axis in the grid's order.
std::vector<std::string> axis_values(const SweepSummary& summary, const std::string& axis) {
    std::vector<std::string> out;
    for (const auto& s : summary.settings) {
        const std::string v = value_of(s, axis);
        if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    }
    return out;
}

size_t position(const std::vector<std::string>& list, const std::string& v) {
    return static_cast<size_t>(std::find(list.begin(), list.end(), v) - list.begin());
}

std::string value_label(const std::string& v) {
    return v.empty() ? "(unset)" : v;
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
    std::string out;
    for (const auto& i : items) {
        if (!out.empty()) out += sep;
        out += i;
    }
    return out;
}

std::string figure(const std::string& svg, const std::string& caption_html) {
    return fmt::format("<figure>{}<figcaption>{}</figcaption></figure>\n", svg, caption_html);
}

// Colour per setting in the table and the loss curves.
std::string setting_color(size_t index) {
    return palette_color(index);
}

std::string runs_text(const SettingSummary& s) {
    std::string t = fmt::format("{}", s.runs_done);
    if (s.runs_failed > 0) t += fmt::format(", {} failed", s.runs_failed);
    if (s.runs_unfinished > 0) t += fmt::format(", {} unfinished", s.runs_unfinished);
    return t;
}

std::string settings_table(const SweepSummary& summary) {
    std::vector<Metric> shown;
    for (const Metric m : sweep::kAllMetrics) {
        bool any = false;
        for (const auto& s : summary.settings) any = any || estimate_of(s, m).has_value();
        if (any) shown.push_back(m);
    }
    std::vector<Metric> diffs;
    if (!summary.baseline.empty()) {
        for (const Metric m : shown) {
            bool any = false;
            for (const auto& s : summary.settings) any = any || diff_of(s, m).has_value();
            if (any) diffs.push_back(m);
        }
    }
    std::string out =
        "<div style=\"overflow-x:auto\">\n<table class=\"compare\" id=\"sweep-summary\">\n";
    out += "<tr><th>setting</th>";
    for (const auto& a : summary.axes) out += fmt::format("<th>{}</th>", escape_xml(a));
    out += "<th>runs done</th>";
    for (const Metric m : shown) out += fmt::format("<th>{}</th>", escape_xml(metric_heading(m)));
    for (const Metric m : diffs)
        out += fmt::format("<th>Δ {} vs baseline</th>", escape_xml(metric_heading(m)));
    out += "</tr>\n";
    for (size_t i = 0; i < summary.settings.size(); ++i) {
        const auto& s = summary.settings[i];
        const bool baseline = !summary.baseline.empty() && s.setting == summary.baseline;
        out += fmt::format(
            "<tr{} data-setting=\"{}\"><td><span class=\"swatch\" style=\"background:{}\"></span> "
            "{}{}</td>",
            baseline ? " class=\"baseline\"" : "", escape_xml(s.setting), setting_color(i),
            escape_xml(s.setting), baseline ? " <em>(baseline)</em>" : "");
        for (const auto& a : summary.axes)
            out += fmt::format("<td>{}</td>", escape_xml(value_label(value_of(s, a))));
        out += fmt::format("<td>{}</td>", escape_xml(runs_text(s)));
        for (const Metric m : shown) {
            const auto e = estimate_of(s, m);
            if (!e) {
                out += "<td class=\"missing\">–</td>";
                continue;
            }
            out += fmt::format(
                "<td class=\"estimate\" style=\"white-space:nowrap\" title=\"n = {}{}\">{}{}</td>",
                e->n, has_interval(*e) ? ", mean ± 95 % CI half width" : ", no interval",
                escape_xml(estimate_text(*e)),
                has_interval(*e) ? "" : fmt::format(" (n = {})", e->n));
        }
        for (const Metric m : diffs) {
            const auto d = diff_of(s, m);
            if (!d) {
                out += fmt::format("<td class=\"missing\">{}</td>", baseline ? "baseline" : "–");
                continue;
            }
            // An interval that excludes 0: a difference the seeds cannot explain.
            const bool sig = has_interval(*d) && std::abs(d->mean) > *d->half_width;
            out += fmt::format("<td class=\"diff{}\" style=\"white-space:nowrap{}\">{}</td>",
                               sig ? " sig" : "", sig ? ";font-weight:bold" : "",
                               escape_xml(estimate_text(*d, true)));
        }
        out += "</tr>\n";
    }
    out += "</table>\n</div>\n";
    return out;
}

std::string loss_plot(const SweepSummary& summary, const sweep::SweepState& state,
                      const std::vector<RunData>& runs) {
    std::map<std::string, size_t> setting_index;
    for (size_t i = 0; i < summary.settings.size(); ++i)
        setting_index.emplace(summary.settings[i].setting, i);
    std::map<std::string, std::string> setting_of_run;
    for (const auto& r : state.runs) setting_of_run.emplace(r.name, r.setting);
    LinePlot p;
    p.id = "plot-sweep-loss";
    p.title = "Loss of every run";
    p.x.label = "step";
    p.y.label = "loss";
    p.x_name = "step";
    p.y_name = "loss";
    p.width = 760;
    p.height = 400;
    bool any_val = false;
    for (size_t r = 0; r < runs.size(); ++r) {
        const auto setting = setting_of_run.find(runs[r].name);
        const auto index = setting == setting_of_run.end() ? setting_index.end()
                                                           : setting_index.find(setting->second);
        // A run outside the summary's settings keeps a colour of its own past theirs.
        const std::string color = setting_color(
            index == setting_index.end() ? summary.settings.size() + r : index->second);
        Series train{runs[r].name, {}, {}, color};
        for (const auto& t : runs[r].train) {
            train.x.push_back(static_cast<double>(t.step));
            train.y.push_back(t.loss);
        }
        Series val{runs[r].name + " (val)", {}, {}, color};
        val.dashed = true;
        for (const auto& v : runs[r].val) {
            val.x.push_back(static_cast<double>(v.step));
            val.y.push_back(v.val_loss);
        }
        if (!train.x.empty()) p.series.push_back(std::move(train));
        if (!val.x.empty()) {
            any_val = true;
            p.series.push_back(std::move(val));
        }
    }
    if (p.series.empty()) {
        return "<p class=\"missing plot-missing\">No finished run has logged a loss yet.</p>\n";
    }
    return figure(render_line_plot(p),
                  fmt::format("Training loss (solid) of every finished run{}; the runs of one "
                              "setting share its colour (the table's swatch).",
                              any_val ? ", validation loss dashed" : ""));
}

std::string runs_not_done(const sweep::SweepState& state) {
    std::string out;
    std::string failed;
    std::vector<std::string> unfinished;
    for (const auto& r : state.runs) {
        if (r.status == "failed") {
            failed += fmt::format("<li data-run=\"{}\"><code>{}</code> ({}): {}</li>\n",
                                  escape_xml(r.name), escape_xml(r.name), escape_xml(r.setting),
                                  escape_xml(r.error.empty() ? "no error recorded" : r.error));
        } else if (r.status != "done") {
            unfinished.push_back(fmt::format("{} ({})", r.name, r.status));
        }
    }
    if (!failed.empty()) {
        out += "<h2 class=\"section\" id=\"failed\">Failed runs</h2>\n";
        out += "<ul class=\"failed-runs\" id=\"failed-runs\">\n" + failed + "</ul>\n";
    }
    if (!unfinished.empty()) {
        out += fmt::format(
            "<p class=\"lead\" id=\"unfinished-runs\">Not finished, so not in the summary: "
            "{}.</p>\n",
            escape_xml(join(unfinished)));
    }
    return out;
}

}  // namespace

bool is_sweep_folder(const std::filesystem::path& dir) {
    std::error_code ec;
    return fs::is_regular_file(dir / "sweep.json", ec);
}

SweepEncoding sweep_encoding(const std::vector<std::string>& axes) {
    auto has = [&](const char* a) { return std::find(axes.begin(), axes.end(), a) != axes.end(); };
    SweepEncoding e;
    if (has("model.mlp"))
        e.shape_axis = "model.mlp";
    else if (has("model.attn"))
        e.shape_axis = "model.attn";
    else if (!axes.empty())
        e.shape_axis = axes.front();
    if (has("mechanism") && e.shape_axis != "mechanism") {
        e.color_axis = "mechanism";
    } else {
        for (const auto& a : axes) {
            if (a != e.shape_axis) {
                e.color_axis = a;
                break;
            }
        }
    }
    return e;
}

std::string render_sweep_figure1(const SweepSummary& summary) {
    const SweepEncoding enc = sweep_encoding(summary.axes);
    const std::vector<std::string> shapes =
        enc.shape_axis.empty() ? std::vector<std::string>{} : axis_values(summary, enc.shape_axis);
    const std::vector<std::string> colors =
        enc.color_axis.empty() ? std::vector<std::string>{} : axis_values(summary, enc.color_axis);

    ErrorBarPlot p;
    p.id = "plot-sweep-figure1";
    p.title = "Figure 1: HellaSwag accuracy against CO2e";
    p.x.label = "CO2e of a run incl. PUE (g)";
    p.y.label = "HellaSwag acc_norm";
    p.x_name = "g CO2e";
    p.y_name = "acc_norm";
    p.point_class = "sweep-point";
    p.width = 760;
    p.height = 440;
    p.references.push_back({kHellaSwagChance, "chance 0.25"});
    std::vector<double> xs, ys;
    for (const auto& s : summary.settings) {
        const auto x = estimate_of(s, Metric::Gco2e);
        const auto y = estimate_of(s, Metric::HellaSwagAccNorm);
        if (!x || !y) continue;
        ErrorBarPoint pt;
        pt.x = x->mean;
        pt.y = y->mean;
        if (has_interval(*x)) pt.x_err = x->half_width;
        if (has_interval(*y)) pt.y_err = y->half_width;
        pt.label = s.setting;
        pt.color = enc.color_axis.empty()
                       ? palette_color(0)
                       : palette_color(position(colors, value_of(s, enc.color_axis)));
        pt.marker = enc.shape_axis.empty()
                        ? Marker::Circle
                        : marker_of(position(shapes, value_of(s, enc.shape_axis)));
        auto line = [](const char* what, const Estimate& e, const char* unit) {
            return fmt::format("{}: {}{}{} (n = {})", what, estimate_text(e), unit,
                               has_interval(e) ? ", 95 % CI" : ", no interval", e.n);
        };
        pt.tooltip = fmt::format("{}\n{}\n{}", s.setting, line("CO2e", *x, " g"),
                                 line("HellaSwag acc_norm", *y, ""));
        xs.push_back(pt.x);
        ys.push_back(pt.y);
        p.points.push_back(std::move(pt));
    }
    // Over two decades a linear axis crushes the cheap settings into one corner.
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    bool all_positive = !xs.empty();
    for (double x : xs) {
        all_positive = all_positive && x > 0;
        if (x > 0) {
            lo = std::min(lo, x);
            hi = std::max(hi, x);
        }
    }
    p.x.log = all_positive && hi / lo > 100.0;
    if (!p.x.log) p.x.min = 0.0;
    // The front among the plotted points: on a log axis those ≤ 0 are not drawn.
    std::vector<double> fx = xs;
    if (p.x.log) {
        for (double& x : fx) {
            if (!(x > 0)) x = std::numeric_limits<double>::quiet_NaN();
        }
    }
    p.front = pareto_front(fx, Better::Lower, ys, Better::Higher);

    if (shapes.size() > 1 || (!shapes.empty() && colors.empty())) {
        for (size_t i = 0; i < shapes.size(); ++i) {
            p.legend.push_back(
                {fmt::format("{}: {}", axis_short(enc.shape_axis), value_label(shapes[i])),
                 kShapeColor, marker_of(i)});
        }
    }
    for (size_t i = 0; i < colors.size(); ++i) {
        p.legend.push_back(
            {fmt::format("{}: {}", axis_short(enc.color_axis), value_label(colors[i])),
             palette_color(i), std::nullopt});
    }
    if (!p.front.empty()) {
        ErrorBarLegendEntry front{"Pareto front", kFrontColor, std::nullopt};
        front.line = true;
        front.dashed = true;
        p.legend.push_back(front);
    }
    return render_error_bar_plot(p);
}

std::string render_sweep_html(const SweepSummary& summary, const sweep::SweepState& state,
                              const std::vector<RunData>& runs, const std::string& title) {
    int done = 0, failed = 0, unfinished = 0;
    for (const auto& r : state.runs) {
        done += r.status == "done";
        failed += r.status == "failed";
        unfinished += r.status != "done" && r.status != "failed";
    }
    std::string body = fmt::format("<h1>{}</h1>\n", escape_xml(title));
    body += fmt::format(
        "<p class=\"lead\">{} setting{} over axes {}; {} of {} run{} done, {} failed, {} not "
        "finished. Baseline: {}. Figures are means over seeds ± the half width of their 95 % "
        "confidence interval (Student t); Δ columns: a setting's mean minus the baseline's "
        "with the Welch interval of the difference (bold where it excludes 0).</p>\n",
        summary.settings.size(), summary.settings.size() == 1 ? "" : "s",
        escape_xml(summary.axes.empty() ? std::string("(none)") : join(summary.axes)), done,
        state.runs.size(), state.runs.size() == 1 ? "" : "s", failed, unfinished,
        escape_xml(summary.baseline.empty() ? std::string("none") : summary.baseline));
    body += "<h2 class=\"section\" id=\"settings\">Settings</h2>\n";
    body += settings_table(summary);

    body += "<h2 class=\"section\" id=\"figure1\">Quality against emissions</h2>\n";
    std::vector<std::string> not_plotted;
    size_t without_interval = 0;
    for (const auto& s : summary.settings) {
        const auto x = estimate_of(s, Metric::Gco2e);
        const auto y = estimate_of(s, Metric::HellaSwagAccNorm);
        if (!x || !y)
            not_plotted.push_back(s.setting);
        else if (!has_interval(*x) || !has_interval(*y))
            ++without_interval;
    }
    const SweepEncoding enc = sweep_encoding(summary.axes);
    std::string caption = fmt::format(
        "One point per setting at the means of its runs: acc_norm of the last HellaSwag "
        "evaluation against the run's total CO2e (incl. PUE); bars: 95 % confidence "
        "intervals over seeds{}. Shape: {}; colour: {}. The dashed step line joins the Pareto "
        "front (no other setting has both less CO2e and a higher acc_norm). {}.",
        without_interval > 0 ? " (none where a setting has a single run)" : "",
        escape_xml(enc.shape_axis.empty() ? std::string("one") : enc.shape_axis),
        escape_xml(enc.color_axis.empty() ? std::string("one") : enc.color_axis),
        escape_xml(kGreenAlgorithmsCredit));
    if (!not_plotted.empty()) {
        caption += " Not plotted (no finished run with both HellaSwag and CO2e): " +
                   escape_xml(join(not_plotted)) + ".";
    }
    body += figure(render_sweep_figure1(summary), caption);

    body += "<h2 class=\"section\" id=\"curves\">Training curves</h2>\n";
    body += loss_plot(summary, state, runs);
    body += runs_not_done(state);
    body += fmt::format(
        "<footer>Written by <code>greenmoe report</code> from a <code>greenmoe sweep</code> "
        "folder (sweep.json and its runs' logs). Self-contained: no scripts, fonts or images "
        "are loaded from elsewhere. CO2e: {}.</footer>\n",
        escape_xml(kGreenAlgorithmsCredit));
    return html_page(title, body);
}

SweepReport build_sweep_report(const std::filesystem::path& dir, const std::string& title) {
    const sweep::SweepState state = sweep::read_sweep_state(dir);
    const SweepSummary summary = sweep::summarize_sweep(dir);
    SweepReport out;
    std::vector<RunData> runs;
    for (const auto& r : state.runs) {
        out.runs_failed += r.status == "failed";
        if (r.status != "done") continue;
        ++out.runs_done;
        runs.push_back(read_run(dir / r.name));
        for (const auto& w : runs.back().warnings) out.warnings.push_back(w);
    }
    out.settings = summary.settings.size();
    std::string name = dir.lexically_normal().filename().string();
    if (name.empty()) name = dir.lexically_normal().parent_path().filename().string();
    out.html = render_sweep_html(summary, state, runs,
                                 title.empty() ? fmt::format("greenmoe sweep: {}", name) : title);
    return out;
}

}  // namespace greenmoe::report

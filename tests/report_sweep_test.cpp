// The sweep view of `greenmoe report`: Figure 1 from a hand-made summary (a point per
// setting, error bars only where intervals exist, the Pareto front, legends, escaping), the
// settings table, the error-bar plot, a sweep folder through the command, and the page
// rendered in headless Chromium (no script errors, the expected points and error bars).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "greenmoe/report/html_report.h"
#include "greenmoe/report/run_data.h"
#include "greenmoe/report/svg_plot.h"
#include "greenmoe/report/sweep_view.h"
#include "greenmoe/sweep/sweep_state.h"
#include "greenmoe/sweep/sweep_summary.h"
#include "test_support.h"

namespace greenmoe::report {
namespace {

namespace fs = std::filesystem;
using sweep::Estimate;
using sweep::Metric;
using sweep::SettingSummary;
using sweep::SweepState;
using sweep::SweepSummary;
using testing::run_command;
using testing::TempDir;

constexpr size_t kMetrics = std::size(sweep::kAllMetrics);
const std::string kOdd = "mlp-switch_mechanism-<&load";  // a name that needs escaping

size_t count(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t p = haystack.find(needle); p != std::string::npos;
         p = haystack.find(needle, p + needle.size()))
        ++n;
    return n;
}

std::string svg_by_id(const std::string& page, const std::string& id) {
    const size_t at = page.find("id=\"" + id + "\"");
    if (at == std::string::npos) return "";
    const size_t start = page.rfind("<svg", at);
    const size_t end = page.find("</svg>", at);
    return page.substr(start, end + 6 - start);
}

std::string attr(const std::string& tag, const std::string& name) {
    std::smatch m;
    return std::regex_search(tag, m, std::regex(" " + name + "=\"([^\"]*)\"")) ? m[1].str() : "";
}

// The opening tags of the elements whose class attribute starts with `cls`.
std::vector<std::string> tags_of(const std::string& svg, const std::string& cls) {
    std::vector<std::string> out;
    const std::regex tag("<[a-z]+ [^>]*class=\"" + cls + "[^\"]*\"[^>]*>");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tag); it != std::sregex_iterator();
         ++it)
        out.push_back(it->str());
    return out;
}

std::optional<Estimate> est(int n, double mean, std::optional<double> hw) {
    return Estimate{n, mean, hw};
}

SettingSummary setting(const std::string& name, const std::string& mlp, const std::string& mech,
                       int n, double co2e, double acc, std::optional<double> co2e_hw,
                       std::optional<double> acc_hw) {
    SettingSummary s;
    s.setting = name;
    s.values = {{"model.mlp", mlp}, {"mechanism", mech}};
    s.runs_done = n;
    s.metrics.assign(kMetrics, std::nullopt);
    s.diff_from_baseline.assign(kMetrics, std::nullopt);
    s.metrics[size_t(Metric::Gco2e)] = est(n, co2e, co2e_hw);
    s.metrics[size_t(Metric::HellaSwagAccNorm)] = est(n, acc, acc_hw);
    s.metrics[size_t(Metric::ValLoss)] = est(n, 5.5, n > 1 ? std::optional(0.02) : std::nullopt);
    return s;
}

// 3 settings over 2 variants × 2 mechanisms; the last has one run (no intervals) and a name
// that needs escaping. Front: dense (least CO2e) and switch (best acc_norm); the odd one is
// beaten by switch in both.
SweepSummary hand_summary() {
    SweepSummary s;
    s.axes = {"model.mlp", "mechanism"};
    s.baseline = "mlp-dense_mechanism-none";
    s.settings.push_back(
        setting("mlp-dense_mechanism-none", "dense", "none", 3, 10.0, 0.30, 1.0, 0.01));
    s.settings.push_back(
        setting("mlp-switch_mechanism-none", "switch", "none", 3, 12.0, 0.33, 1.5, 0.02));
    s.settings.push_back(
        setting(kOdd, "switch", "<&load", 1, 20.0, 0.32, std::nullopt, std::nullopt));
    s.settings[1].runs_failed = 1;
    s.settings[1].diff_from_baseline[size_t(Metric::HellaSwagAccNorm)] = est(3, 0.03, 0.015);
    s.settings[1].diff_from_baseline[size_t(Metric::Gco2e)] = est(3, 2.0, 3.0);
    return s;
}

SweepState hand_state(const SweepSummary& summary) {
    SweepState st;
    st.axes = summary.axes;
    st.baseline = summary.baseline;
    for (const auto& s : summary.settings) {
        for (int seed = 1; seed <= s.runs_done; ++seed) {
            sweep::SweepRunState r;
            r.name = fmt::format("{}_seed-{}", s.setting, seed);
            r.setting = s.setting;
            r.values = s.values;
            r.seed = uint64_t(seed);
            r.status = "done";
            st.runs.push_back(r);
        }
    }
    sweep::SweepRunState failed;
    failed.name = "mlp-switch_mechanism-none_seed-4";
    failed.setting = "mlp-switch_mechanism-none";
    failed.status = "failed";
    failed.error = "train exited with status 1: loss is NaN at step 7 <boom>";
    st.runs.push_back(failed);
    return st;
}

// A finished run's log: a start, `steps` train records, val at 0 and the end, a HellaSwag eval
// and the done record.
std::string run_log(int steps, double loss0, double co2e, double acc_norm) {
    std::string log = R"({"type":"start","log_version":2,"parameters":1000,"tokens_per_step":64,)"
                      R"("config":{"model":{"n_layer":2,"mlp":"dense"}}})"
                      "\n";
    log += fmt::format("{{\"type\":\"val\",\"step\":0,\"val_loss\":{}}}\n", loss0 + 0.1);
    for (int s = 1; s <= steps; ++s) {
        log += fmt::format(
            "{{\"type\":\"train\",\"step\":{},\"loss\":{},\"tokens\":{},\"train_seconds\":{},"
            "\"energy_j\":{},\"co2e_g\":{}}}\n",
            s, loss0 - 0.1 * s, 64 * s, 0.5 * s, 100.0 * s / steps, co2e * s / steps);
    }
    log += fmt::format("{{\"type\":\"val\",\"step\":{},\"val_loss\":{}}}\n", steps,
                       loss0 - 0.1 * steps + 0.05);
    log += fmt::format(
        "{{\"type\":\"eval\",\"step\":{},\"task\":\"hellaswag\",\"items\":100,\"acc\":{},"
        "\"acc_norm\":{}}}\n",
        steps, acc_norm - 0.01, acc_norm);
    log += fmt::format(
        "{{\"type\":\"done\",\"step\":{},\"train_loss\":{},\"val_loss\":{},\"tokens\":{},"
        "\"train_seconds\":{},\"energy_j\":100,\"co2e_g\":{}}}\n",
        steps, loss0 - 0.1 * steps, loss0 - 0.1 * steps + 0.05, 64 * steps, 0.5 * steps, co2e);
    return log;
}

std::vector<RunData> hand_runs(const SweepState& st) {
    std::vector<RunData> runs;
    int k = 0;
    for (const auto& r : st.runs) {
        if (r.status != "done") continue;
        RunData run;
        run.name = r.name;
        parse_run_log(run_log(5, 6.0 + 0.1 * k++, 10.0, 0.3), r.name + "/log.jsonl", run);
        runs.push_back(std::move(run));
    }
    return runs;
}

TEST(SweepView, Encoding) {
    auto enc = sweep_encoding({"mechanism", "model.mlp", "seed_group"});
    EXPECT_EQ(enc.shape_axis, "model.mlp");
    EXPECT_EQ(enc.color_axis, "mechanism");
    enc = sweep_encoding({"model.attn", "train.lr"});
    EXPECT_EQ(enc.shape_axis, "model.attn");
    EXPECT_EQ(enc.color_axis, "train.lr");
    enc = sweep_encoding({"train.lr", "model.n_experts"});
    EXPECT_EQ(enc.shape_axis, "train.lr");
    EXPECT_EQ(enc.color_axis, "model.n_experts");
    enc = sweep_encoding({"mechanism"});
    EXPECT_EQ(enc.shape_axis, "mechanism");
    EXPECT_EQ(enc.color_axis, "");
    enc = sweep_encoding({});
    EXPECT_EQ(enc.shape_axis, "");
    EXPECT_EQ(enc.color_axis, "");
}

TEST(SweepView, Figure1PointsErrorBarsFrontAndLegend) {
    const SweepSummary summary = hand_summary();
    const std::string svg = render_sweep_figure1(summary);
    ASSERT_NE(svg.find("id=\"plot-sweep-figure1\""), std::string::npos);

    // One point per setting, at the means, with its shape and colour.
    const auto points = tags_of(svg, "pt sweep-point");
    ASSERT_EQ(points.size(), 3u);
    const std::string odd = escape_xml(kOdd);
    std::set<std::string> front;
    for (const auto& p : points) {
        if (attr(p, "data-front") == "1") front.insert(attr(p, "data-label"));
    }
    EXPECT_EQ(attr(points[0], "data-x"), "10");
    EXPECT_EQ(attr(points[0], "data-y"), "0.3");
    EXPECT_EQ(attr(points[0], "data-marker"), "circle");  // dense
    EXPECT_EQ(attr(points[1], "data-marker"), "square");  // switch
    EXPECT_EQ(attr(points[2], "data-marker"), "square");
    EXPECT_EQ(attr(points[0], "fill"), attr(points[1], "fill"));  // both mechanism none
    EXPECT_NE(attr(points[1], "fill"), attr(points[2], "fill"));
    EXPECT_EQ(attr(points[2], "data-label"), odd);
    EXPECT_EQ(front,
              (std::set<std::string>{"mlp-dense_mechanism-none", "mlp-switch_mechanism-none"}));
    // The step line: from dense right at its y, then up to switch.
    const auto front_line = tags_of(svg, "front");
    ASSERT_EQ(front_line.size(), 1u);
    EXPECT_EQ(attr(front_line[0], "data-points"), "2");
    EXPECT_NE(attr(front_line[0], "d").find(" H"), std::string::npos);

    // Error bars both ways where the setting has intervals; none for the single run.
    const auto bars = tags_of(svg, "error-bar");
    ASSERT_EQ(bars.size(), 4u);
    std::multiset<std::string> bar_axes;
    for (const auto& b : bars) {
        EXPECT_NE(attr(b, "data-label"), odd);
        bar_axes.insert(attr(b, "data-axis"));
    }
    EXPECT_EQ(bar_axes.count("x"), 2u);
    EXPECT_EQ(bar_axes.count("y"), 2u);
    EXPECT_EQ(attr(bars[0], "data-lo"), "9");
    EXPECT_EQ(attr(bars[0], "data-hi"), "11");

    // Tooltips: setting, means ± CI and n.
    EXPECT_NE(svg.find("<title>mlp-dense_mechanism-none\nCO2e: 10.0 ± 1.0 g, 95 % CI (n = 3)\n"
                       "HellaSwag acc_norm: 0.300 ± 0.010, 95 % CI (n = 3)</title>"),
              std::string::npos)
        << svg;
    EXPECT_NE(svg.find("CO2e: 20.00 g, no interval (n = 1)"), std::string::npos);

    // Legend: two shapes, two colours, the front.
    std::vector<std::string> legend;
    for (const auto& e : tags_of(svg, "legend-entry")) legend.push_back(attr(e, "data-name"));
    EXPECT_EQ(legend, (std::vector<std::string>{"mlp: dense", "mlp: switch", "mechanism: none",
                                                "mechanism: &lt;&amp;load", "Pareto front"}));
    // Nothing unescaped.
    EXPECT_EQ(svg.find("<&"), std::string::npos);
    EXPECT_NE(svg.find("&lt;&amp;load"), std::string::npos);
    EXPECT_EQ(svg.find("(log scale)"), std::string::npos);
}

TEST(SweepView, Figure1LogAxisAndMissingFigures) {
    SweepSummary summary = hand_summary();
    summary.settings[2].metrics[size_t(Metric::Gco2e)] = est(1, 5000.0, std::nullopt);
    // A setting whose runs recorded no HellaSwag is not drawn.
    summary.settings.push_back(
        setting("mlp-olnn_mechanism-none", "olnn", "none", 2, 11, 0.3, 0.5, 0.01));
    summary.settings.back().metrics[size_t(Metric::HellaSwagAccNorm)] = std::nullopt;
    // An interval wider than the mean: on the log axis its bar stops at the axis end.
    summary.settings[0].metrics[size_t(Metric::Gco2e)] = est(3, 10.0, 12.0);
    const std::string svg = render_sweep_figure1(summary);
    EXPECT_NE(svg.find("(log scale)"), std::string::npos);
    EXPECT_EQ(tags_of(svg, "pt sweep-point").size(), 3u);
    EXPECT_EQ(tags_of(svg, "error-bar").size(), 4u);
    // Three shapes now (dense, switch, olnn) though olnn has no point.
    EXPECT_EQ(count(svg, "class=\"legend-entry\""), 3u + 2u + 1u);

    const std::string page = render_sweep_html(summary, hand_state(summary), {}, "t");
    EXPECT_NE(page.find("Not plotted (no finished run with both HellaSwag and CO2e): "
                        "mlp-olnn_mechanism-none."),
              std::string::npos);
    EXPECT_NE(page.find("No finished run has logged a loss yet."), std::string::npos);
}

TEST(SweepView, ErrorBarPlotEdgeCases) {
    ErrorBarPlot p;
    p.id = "eb";
    p.points.push_back({1.0, 2.0, 0.0, std::nullopt, "zero", "", "", Marker::Star});
    p.points.push_back({std::nan(""), 2.0, 1.0, 1.0, "nan", "", "", Marker::Diamond});
    p.points.push_back({2.0, 3.0, std::nullopt, 0.5, "a<b", "", "", Marker::Cross});
    p.front = {0, 2, 2, 7};  // duplicates and indices out of range are ignored
    const std::string svg = render_error_bar_plot(p);
    EXPECT_EQ(tags_of(svg, "pt").size(), 2u);
    // A zero half width still has its interval drawn (the caps); the NaN point has none.
    EXPECT_EQ(tags_of(svg, "error-bar").size(), 2u);
    EXPECT_NE(svg.find("1 point not drawn"), std::string::npos);
    EXPECT_NE(svg.find("data-label=\"a&lt;b\""), std::string::npos);
    EXPECT_EQ(attr(tags_of(svg, "front")[0], "data-points"), "2");
    for (size_t i = 0; i < 8; ++i) EXPECT_FALSE(marker_name(marker_of(i)).empty());
    EXPECT_EQ(marker_of(8), Marker::Circle);
    // No points: the frame says so.
    EXPECT_NE(render_error_bar_plot(ErrorBarPlot{}).find("not recorded"), std::string::npos);
}

TEST(SweepView, PageTableFailedRunsAndLossCurves) {
    const SweepSummary summary = hand_summary();
    const SweepState state = hand_state(summary);
    const auto runs = hand_runs(state);
    ASSERT_EQ(runs.size(), 7u);
    const std::string page = render_sweep_html(summary, state, runs, "grid <1> & co");
    EXPECT_NE(page.find("<h1>grid &lt;1&gt; &amp; co</h1>"), std::string::npos);
    EXPECT_EQ(page.find("<&"), std::string::npos);

    // The table: a row per setting, mean ± CI cells, the differences from the baseline.
    const size_t table = page.find("id=\"sweep-summary\"");
    ASSERT_NE(table, std::string::npos);
    const std::string rows = page.substr(table, page.find("</table>", table) - table);
    EXPECT_EQ(count(rows, "<tr"), 4u);
    EXPECT_NE(rows.find("0.300 ± 0.010"), std::string::npos);
    EXPECT_NE(rows.find("0.3200 (n = 1)"), std::string::npos);
    EXPECT_NE(rows.find("Δ HellaSwag acc_norm vs baseline"), std::string::npos);
    EXPECT_NE(rows.find("+0.030 ± 0.015"), std::string::npos);  // excludes 0: bold
    EXPECT_NE(rows.find("class=\"diff sig\""), std::string::npos);
    EXPECT_NE(rows.find("+2.0 ± 3.0"), std::string::npos);  // includes 0
    EXPECT_NE(rows.find("<em>(baseline)</em>"), std::string::npos);
    EXPECT_NE(rows.find("3, 1 failed"), std::string::npos);
    EXPECT_NE(rows.find("&lt;&amp;load"), std::string::npos);
    // Metrics no setting has are left out.
    EXPECT_EQ(rows.find("tokens/s"), std::string::npos);

    // Failed runs with their errors.
    const size_t failed = page.find("id=\"failed-runs\"");
    ASSERT_NE(failed, std::string::npos);
    EXPECT_NE(page.find("loss is NaN at step 7 &lt;boom&gt;", failed), std::string::npos);

    // Loss curves: train and val of every run, runs of one setting in one colour.
    const std::string loss = svg_by_id(page, "plot-sweep-loss");
    ASSERT_FALSE(loss.empty());
    EXPECT_EQ(count(loss, "class=\"pt\""), 7u * (5 + 2));
    const auto series = tags_of(loss, "series");
    ASSERT_EQ(series.size(), 14u);
    std::set<std::string> colors;
    for (const auto& s : tags_of(loss, "pt")) colors.insert(attr(s, "fill"));
    EXPECT_EQ(colors.size(), 3u);
    EXPECT_NE(loss.find("data-series=\"mlp-dense_mechanism-none_seed-1 (val)\""),
              std::string::npos);
}

void write_sweep_folder(const fs::path& dir) {
    fs::create_directories(dir);
    SweepState st;
    st.base = "/configs/nano.json";
    st.axes = {"model.mlp", "mechanism"};
    st.baseline = "mlp-dense_mechanism-none";
    st.spec = nlohmann::json::object();
    struct R {
        std::string mlp, mech;
        int seed;
        std::string status;
        double co2e, acc;
    };
    const std::vector<R> runs = {
        {"dense", "none", 1, "done", 10.0, 0.30},  {"dense", "none", 2, "done", 11.0, 0.31},
        {"switch", "none", 1, "done", 12.0, 0.33}, {"switch", "none", 2, "done", 13.0, 0.35},
        {"switch", "load", 1, "done", 20.0, 0.32}, {"switch", "load", 2, "failed", 0, 0},
        {"dense", "load", 1, "pending", 0, 0},
    };
    for (const auto& r : runs) {
        sweep::SweepRunState s;
        s.setting = fmt::format("mlp-{}_mechanism-{}", r.mlp, r.mech);
        s.name = fmt::format("{}_seed-{}", s.setting, r.seed);
        s.values = {{"model.mlp", r.mlp}, {"mechanism", r.mech}};
        s.seed = uint64_t(r.seed);
        s.status = r.status;
        if (r.status == "failed") s.error = "train exited with status 1";
        if (r.status == "done") {
            fs::create_directories(dir / s.name);
            testing::write_text_file(dir / s.name / "log.jsonl",
                                     run_log(4, 6.0 + r.seed * 0.1, r.co2e, r.acc));
        }
        st.runs.push_back(s);
    }
    sweep::write_sweep_state(dir, st);
}

TEST(SweepView, CommandRendersASweepFolder) {
    TempDir tmp;
    const fs::path grid = tmp / "grid";
    write_sweep_folder(grid);
    ASSERT_TRUE(is_sweep_folder(grid));
    ASSERT_FALSE(is_sweep_folder(grid / "mlp-dense_mechanism-none_seed-1"));
    const std::string bin = testing::greenmoe_binary().string();
    auto r = run_command(bin + " report '" + grid.string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // The pending-only setting may or may not count as a setting: only the runs are pinned.
    EXPECT_NE(r.output.find("5 runs done, 1 failed"), std::string::npos) << r.output;
    const std::string page = testing::read_text_file(grid / "report.html");
    const std::string fig = svg_by_id(page, "plot-sweep-figure1");
    EXPECT_EQ(tags_of(fig, "pt sweep-point").size(), 3u);
    EXPECT_EQ(tags_of(fig, "error-bar").size(), 4u);  // the two settings with two runs
    EXPECT_EQ(count(svg_by_id(page, "plot-sweep-loss"), "class=\"pt\""), 5u * (4 + 2));
    EXPECT_NE(page.find("id=\"sweep-summary\""), std::string::npos);
    EXPECT_NE(page.find("train exited with status 1"), std::string::npos);
    EXPECT_NE(page.find("mlp-dense_mechanism-load_seed-1 (pending)"), std::string::npos);

    // A sweep folder goes alone and without --eval; run folders still work as before.
    r = run_command(bin + " report '" + grid.string() + "' '" +
                    (grid / "mlp-dense_mechanism-none_seed-1").string() + "'");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("is a sweep folder"), std::string::npos) << r.output;
    testing::write_text_file(tmp / "e.json", "{}");
    r = run_command(bin + " report '" + grid.string() + "' --eval '" + (tmp / "e.json").string() +
                    "'");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = run_command(bin + " report -q '" + (grid / "mlp-dense_mechanism-none_seed-1").string() +
                    "' -o '" + (tmp / "one.html").string() + "'");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(testing::read_text_file(tmp / "one.html").find("id=\"comparison\""),
              std::string::npos);
}

// Headless Chromium, as report_html_test and report_models_test run it.
std::string find_chromium() {
    const auto r = run_command("command -v chromium || command -v chromium-browser");
    if (r.exit_code != 0) return "";
    return r.output.substr(0, r.output.find('\n'));
}

std::string body_attr(const std::string& dom, const std::string& name) {
    std::smatch m;
    if (!std::regex_search(dom, m, std::regex("<body[^>]*>"))) return "<no body>";
    const std::string tag = m.str();
    if (!std::regex_search(tag, m, std::regex(" " + name + "=\"([^\"]*)\""))) return "<none>";
    return m[1].str();
}

TEST(SweepViewBrowser, RendersInHeadlessChromium) {
    const char* skip = std::getenv("GREENMOE_SKIP_BROWSER_TESTS");
    if (skip && std::string(skip) == "1") GTEST_SKIP() << "GREENMOE_SKIP_BROWSER_TESTS=1";
    const std::string chromium = find_chromium();
    ASSERT_FALSE(chromium.empty())
        << "chromium is not installed: run scripts/test.sh (it installs Debian's chromium), "
           "or set GREENMOE_SKIP_BROWSER_TESTS=1 to skip this test";
    TempDir tmp;
    const fs::path grid = tmp / "grid";
    write_sweep_folder(grid);
    const fs::path html = tmp / "sweep.html";
    auto r = run_command(testing::greenmoe_binary().string() + " report -q '" + grid.string() +
                         "' -o '" + html.string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // And the hand-made summary's page, with its escaped names.
    const SweepSummary summary = hand_summary();
    const SweepState state = hand_state(summary);
    const fs::path hand = tmp / "hand.html";
    testing::write_text_file(hand, render_sweep_html(summary, state, hand_runs(state), "hand"));

    const std::string flags =
        " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir='" +
        (tmp / "profile").string() + "'";
    struct Expect {
        fs::path page;
        size_t points, bars, loss_points;
    };
    for (const auto& e : {Expect{html, 3, 4, 5 * 6}, Expect{hand, 3, 4, 7 * 7}}) {
        const fs::path dom_file = tmp / "dom.html";
        r = run_command("(timeout 60 " + chromium + flags + " --dump-dom 'file://" +
                        e.page.string() + "' >'" + dom_file.string() + "' 2>'" +
                        (tmp / "dom.log").string() + "')");
        ASSERT_EQ(r.exit_code, 0) << testing::read_text_file(tmp / "dom.log");
        const std::string dom = testing::read_text_file(dom_file);
        EXPECT_EQ(body_attr(dom, "data-status"), "ok") << e.page;
        EXPECT_EQ(body_attr(dom, "data-errors"), "") << e.page;
        const std::string fig = svg_by_id(dom, "plot-sweep-figure1");
        ASSERT_FALSE(fig.empty()) << e.page;
        EXPECT_EQ(tags_of(fig, "pt sweep-point").size(), e.points) << e.page;
        EXPECT_EQ(tags_of(fig, "error-bar").size(), e.bars) << e.page;
        // The page's own count (querySelectorAll in the browser): Figure 1 and the losses.
        EXPECT_EQ(body_attr(dom, "data-points"), std::to_string(e.points + e.loss_points))
            << e.page;
        EXPECT_EQ(body_attr(dom, "data-plots"), "2") << e.page;
    }
}

}  // namespace
}  // namespace greenmoe::report

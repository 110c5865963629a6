// report.html's models view: the Pareto front against a brute-force search, eval results read
// in both layouts and matched to their models, and `greenmoe report --models` rendered in
// headless Chromium (every plot has its exact points, the marked front is the true front, no
// page errors).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/bench/bench_results.h"
#include "greenmoe/report/models_view.h"
#include "greenmoe/report/pareto.h"
#include "test_support.h"

namespace greenmoe::report {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::run_command;
using testing::TempDir;

// The front by definition: i is on it unless some j is at least as good in both figures and
// better in one (both figures "higher is better" after the signs).
std::vector<size_t> brute_front(const std::vector<double>& x, double sx,
                                const std::vector<double>& y, double sy) {
    std::vector<size_t> out;
    for (size_t i = 0; i < x.size(); ++i) {
        if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
        bool dominated = false;
        for (size_t j = 0; j < x.size() && !dominated; ++j) {
            if (j == i || !std::isfinite(x[j]) || !std::isfinite(y[j])) continue;
            const double xi = sx * x[i], xj = sx * x[j], yi = sy * y[i], yj = sy * y[j];
            dominated = xj >= xi && yj >= yi && (xj > xi || yj > yi);
        }
        if (!dominated) out.push_back(i);
    }
    return out;
}

TEST(Pareto, MatchesBruteForceOnRandomPointsWithTiesAndNaN) {
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> coarse(0, 6);  // few values: many ties
    for (int trial = 0; trial < 300; ++trial) {
        const size_t n = size_t(trial % 17);
        std::vector<double> x(n), y(n);
        for (size_t i = 0; i < n; ++i) {
            x[i] = coarse(rng);
            y[i] = trial % 3 == 0 ? std::uniform_real_distribution<double>(0, 1)(rng) : coarse(rng);
            if (coarse(rng) == 0) x[i] = std::nan("");
        }
        for (const auto& [bx, by] :
             {std::pair{Better::Lower, Better::Higher}, std::pair{Better::Higher, Better::Higher},
              std::pair{Better::Lower, Better::Lower}}) {
            const double sx = bx == Better::Higher ? 1.0 : -1.0;
            const double sy = by == Better::Higher ? 1.0 : -1.0;
            EXPECT_EQ(pareto_front(x, bx, y, by), brute_front(x, sx, y, sy)) << "trial " << trial;
        }
    }
    // Identical points both stay; a point beaten in one figure and tied in the other goes.
    EXPECT_EQ(pareto_front({1, 1, 1}, Better::Lower, {5, 5, 4}, Better::Higher),
              (std::vector<size_t>{0, 1}));
}

TEST(ModelsView, ReadsBothEvalLayouts) {
    TempDir tmp;
    testing::write_text_file(tmp / "harness.json",
                             R"({"results": {"arc_easy": {"acc,none": 0.5, "acc_norm,none": 0.55},
                        "boolq": {"acc,none": 0.6},
                        "mmlu": {"acc,none": 0.3}, "mmlu_anatomy": {"acc,none": 0.9}},
            "group_subtasks": {"mmlu": ["mmlu_anatomy"]}})");
    const auto h = read_eval_accuracies(tmp / "harness.json");
    EXPECT_EQ(h,
              (std::map<std::string, double>{{"arc_easy", 0.55}, {"boolq", 0.6}, {"mmlu", 0.3}}));
    testing::write_text_file(tmp / "hs.json",
                             R"({"task": "hellaswag", "acc": 0.25, "acc_norm": 0.27})");
    EXPECT_EQ(read_eval_accuracies(tmp / "hs.json"),
              (std::map<std::string, double>{{"hellaswag", 0.27}}));
    testing::write_text_file(tmp / "ppl.json", R"({"task": "perplexity", "perplexity": 12.0})");
    EXPECT_TRUE(read_eval_accuracies(tmp / "ppl.json").empty());
    testing::write_text_file(tmp / "bad.json", R"({"something": 1})");
    const std::string message =
        testing::error_message([&] { read_eval_accuracies(tmp / "bad.json"); });
    EXPECT_NE(message.find("bad.json"), std::string::npos) << message;
}

struct FakeModel {
    std::string name;
    double j_per_token, tokens_per_s, rss_gib;
    int64_t parameters;
    double pruned_percent;  // < 0: unknown
    std::string criterion;
    double arc = -1, boolq = -1;  // < 0: no eval result
    bool failed = false;
    bool baseline = false;
};

const std::vector<FakeModel> kModels = {
    {"original", 0.50, 40, 1.30, 7000, 0, "", 0.62, 0.70, false, true},
    {"naee-25", 0.42, 46, 1.10, 5600, 25, "naee", 0.60, 0.69},
    {"naee-50", 0.35, 52, 0.90, 4200, 50, "naee", 0.55, 0.66},
    {"moeits-25", 0.40, 47, 1.10, 5600, 25, "moeits", 0.61, 0.67},
    {"moeits-50", 0.36, 50, 0.90, 4200, 50, "moeits", 0.50, 0.64},
    {"random-50", 0.38, 51, 0.90, 4200, 50, "random", 0.40, 0.52},
    {"no-eval", 0.30, 60, 0.80, 3500, 62.5, "moeits"},
    {"broken", 0, 0, 0, 0, -1, "", -1, -1, true},
};

// A bench output folder with the rows of kModels (batch 1 and 4) and eval files beside them.
fs::path write_fake_bench(const TempDir& tmp) {
    std::string jsonl;
    for (const FakeModel& f : kModels) {
        const fs::path dir = tmp / "models" / f.name;
        fs::create_directories(dir);
        if (f.arc >= 0) {
            Json r = {{"results",
                       {{"arc_easy", {{"acc,none", f.arc - 0.02}, {"acc_norm,none", f.arc}}},
                        {"boolq", {{"acc,none", f.boolq}}}}}};
            testing::write_text_file(dir / "eval_tasks.json", r.dump());
        }
        for (const int batch : {1, 4}) {
            BenchRow row;
            row.model = dir.string();
            row.model_absolute = dir.string();
            row.baseline = f.baseline;
            row.batch = batch;
            row.ok = !f.failed;
            row.error = f.failed ? "cannot read broken/config.json" : "";
            row.prompt_tokens = 32;
            row.new_tokens = 32;
            row.repeats = 3;
            row.warmup = 1;
            row.j_per_token = f.j_per_token / batch;
            row.decode_tokens_per_s = f.tokens_per_s * batch;
            row.peak_rss_bytes = f.rss_gib * 1024 * 1024 * 1024;
            row.parameters = f.parameters;
            row.active_parameters = f.parameters / 4;
            row.experts_per_layer = {8, 8};
            row.energy_source = "estimated: cpu, ram (Green Algorithms)";
            row.stable = true;
            if (f.pruned_percent >= 0) row.experts_pruned_percent = f.pruned_percent;
            row.criterion = f.criterion;
            jsonl += bench_row_json(row).dump() + "\n";
        }
    }
    const fs::path out = tmp / "bench";
    fs::create_directories(out);
    testing::write_text_file(out / "bench.jsonl", jsonl);
    return out;
}

TEST(ModelsView, AccuracyIsTheMeanOfTheCommonTasksAndEvalFilesFindTheirModel) {
    TempDir tmp;
    const fs::path bench = write_fake_bench(tmp);
    const auto rows = read_bench_rows(bench);
    ASSERT_EQ(rows.size(), 2 * kModels.size());
    const ModelsView view = build_models_view(rows, 0);
    EXPECT_EQ(view.batch, 1);
    ASSERT_EQ(view.models.size(), kModels.size());
    EXPECT_EQ(view.tasks, (std::vector<std::string>{"arc_easy", "boolq"}));
    EXPECT_NEAR(*view.models[0].accuracy, (0.62 + 0.70) / 2, 1e-12);
    EXPECT_FALSE(view.models[6].accuracy.has_value());
    EXPECT_EQ(view.models[1].label, "naee-25");
    // A path relative to where bench ran: the eval files are found through model_absolute.
    std::vector<BenchRow> moved = rows;
    moved[0].model = "elsewhere/original";
    const ModelsView found = build_models_view(moved, 1);
    EXPECT_EQ(found.models[0].label, "original");
    EXPECT_NEAR(*found.models[0].accuracy, (0.62 + 0.70) / 2, 1e-12);

    // An extra result for the model without one, found by the model it evaluated.
    testing::write_text_file(
        tmp / "extra.json",
        Json{{"model_absolute", (tmp / "models" / "no-eval").string()},
             {"results", {{"arc_easy", {{"acc,none", 0.4}}}, {"boolq", {{"acc,none", 0.5}}}}}}
            .dump());
    const ModelsView with = build_models_view(rows, 4, {tmp / "extra.json"});
    EXPECT_EQ(with.batch, 4);
    EXPECT_NEAR(*with.models[6].accuracy, 0.45, 1e-12);
    testing::write_text_file(tmp / "other.json",
                             R"({"model_absolute": "/elsewhere", "task": "hellaswag"})");
    EXPECT_THROW(build_models_view(rows, 1, {tmp / "other.json"}), UsageError);
}

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

std::string svg_by_id(const std::string& page, const std::string& id) {
    const size_t at = page.find("id=\"" + id + "\"");
    if (at == std::string::npos) return "";
    const size_t start = page.rfind("<svg", at);
    const size_t end = page.find("</svg>", at);
    return page.substr(start, end + 6 - start);
}

struct Point {
    std::string label;
    double x, y;
    bool front;
};

// The markers of a scatter plot as the browser has them.
std::vector<Point> points_of(const std::string& svg) {
    std::vector<Point> out;
    const std::regex circle("<circle [^>]*class=\"pt\"[^>]*>");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), circle);
         it != std::sregex_iterator(); ++it) {
        const std::string tag = it->str();
        auto attr = [&](const std::string& name) {
            std::smatch m;
            return std::regex_search(tag, m, std::regex(" " + name + "=\"([^\"]*)\"")) ? m[1].str()
                                                                                       : "";
        };
        out.push_back({attr("data-label"), std::atof(attr("data-x").c_str()),
                       std::atof(attr("data-y").c_str()), attr("data-front") == "1"});
    }
    return out;
}

TEST(ModelsViewBrowser, RendersInHeadlessChromiumWithTheTrueFronts) {
    const char* skip = std::getenv("GREENMOE_SKIP_BROWSER_TESTS");
    if (skip && std::string(skip) == "1") GTEST_SKIP() << "GREENMOE_SKIP_BROWSER_TESTS=1";
    const std::string chromium = find_chromium();
    ASSERT_FALSE(chromium.empty())
        << "chromium is not installed: run scripts/test.sh (it installs Debian's chromium), "
           "or set GREENMOE_SKIP_BROWSER_TESTS=1 to skip this test";
    TempDir tmp;
    const fs::path bench = write_fake_bench(tmp);
    const fs::path html = tmp / "models.html";
    auto r = run_command(testing::greenmoe_binary().string() + " report -q --models '" +
                         bench.string() + "' -o '" + html.string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.output;

    const std::string flags =
        " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir='" +
        (tmp / "profile").string() + "'";
    const fs::path dom_file = tmp / "dom.html";
    r = run_command("(timeout 60 " + chromium + flags + " --dump-dom 'file://" + html.string() +
                    "' >'" + dom_file.string() + "' 2>'" + (tmp / "dom.log").string() + "')");
    ASSERT_EQ(r.exit_code, 0) << testing::read_text_file(tmp / "dom.log");
    const std::string dom = testing::read_text_file(dom_file);
    EXPECT_EQ(body_attr(dom, "data-status"), "ok");
    EXPECT_EQ(body_attr(dom, "data-errors"), "");

    // 7 measured models (broken failed); 6 with accuracy; all 7 know their % pruned.
    const std::vector<std::pair<std::string, size_t>> expected = {{"plot-acc-energy", 6},
                                                                  {"plot-speed-energy", 7},
                                                                  {"plot-acc-memory", 6},
                                                                  {"plot-acc-params", 6},
                                                                  {"plot-acc-pruned", 6}};
    size_t total = 0;
    for (const auto& [id, n] : expected) {
        const std::string svg = svg_by_id(dom, id);
        ASSERT_FALSE(svg.empty()) << id;
        EXPECT_EQ(points_of(svg).size(), n) << id;
        total += n;
    }
    EXPECT_EQ(body_attr(dom, "data-points"), std::to_string(total));

    // The marked front of each Pareto plot is the brute-force front of its points (x lower is
    // better, y higher).
    for (const char* id :
         {"plot-acc-energy", "plot-speed-energy", "plot-acc-memory", "plot-acc-params"}) {
        const std::vector<Point> pts = points_of(svg_by_id(dom, id));
        std::vector<double> x, y;
        std::set<std::string> marked, expected_front;
        for (const auto& p : pts) {
            x.push_back(p.x);
            y.push_back(p.y);
            if (p.front) marked.insert(p.label);
        }
        for (const size_t i : brute_front(x, -1.0, y, 1.0)) expected_front.insert(pts[i].label);
        EXPECT_EQ(marked, expected_front) << id;
        EXPECT_FALSE(marked.empty()) << id;
        EXPECT_NE(svg_by_id(dom, id).find("class=\"front\""), std::string::npos) << id;
    }
    // One series per criterion (and the unpruned original).
    const std::string pruned = svg_by_id(dom, "plot-acc-pruned");
    for (const char* series : {"naee", "moeits", "random", "not pruned"})
        EXPECT_NE(pruned.find("data-series=\"" + std::string(series) + "\""), std::string::npos)
            << series;
    // The table: a row per model, the failed one with its error.
    const size_t table = dom.find("id=\"models\"");
    ASSERT_NE(table, std::string::npos);
    const std::string rows = dom.substr(table, dom.find("</table>", table) - table);
    size_t n_rows = 0;
    for (size_t p = rows.find("<tr>"); p != std::string::npos; p = rows.find("<tr>", p + 1))
        ++n_rows;
    EXPECT_EQ(n_rows, kModels.size() + 1);  // + the header
    EXPECT_NE(rows.find("cannot read broken/config.json"), std::string::npos);
}

TEST(ModelsView, CommandErrors) {
    TempDir tmp;
    const fs::path bench = write_fake_bench(tmp);
    const std::string bin = testing::greenmoe_binary().string();
    // Run folders and --models together: one page is one view.
    auto r = run_command(bin + " report '" + tmp.path().string() + "' --models '" + bench.string() +
                         "'");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("not both"), std::string::npos) << r.output;
    testing::write_text_file(tmp / "x.jsonl", "{\"model\": 3}\n");
    r = run_command(bin + " report --models '" + (tmp / "x.jsonl").string() + "' -o '" +
                    (tmp / "m.html").string() + "'");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("x.jsonl line 1"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace greenmoe::report

// report.html: what the page shows with and without energy/eval records, the `greenmoe report`
// command and its errors, and the page rendered in headless Chromium (loads without script
// errors, every plot has its points, the screenshot is a real image).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "greenmoe/report/html_report.h"
#include "greenmoe/report/svg_plot.h"
#include "test_support.h"

namespace greenmoe::report {
namespace {

using nlohmann::json;
using testing::run_command;

size_t count(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t p = haystack.find(needle); p != std::string::npos;
         p = haystack.find(needle, p + needle.size()))
        ++n;
    return n;
}

// The markup of the <svg> element with this id ("" when there is none).
std::string svg_by_id(const std::string& page, const std::string& id) {
    const size_t at = page.find("id=\"" + id + "\"");
    if (at == std::string::npos) return "";
    const size_t start = page.rfind("<svg", at);
    const size_t end = page.find("</svg>", at);
    if (start == std::string::npos || end == std::string::npos) return "";
    return page.substr(start, end + 6 - start);
}

std::string quote(const std::filesystem::path& p) {
    return "'" + p.string() + "'";
}

struct FakeRun {
    std::string mlp = "switch";
    int n_experts = 4;
    int train_records = 10;  // at steps 0, 2, 4, …
    int val_every = 10;      // steps
    int eval_every = 10;     // steps; 0 = no eval records
    bool energy = true;
    bool resumed = false;  // a second start line half way
    double co2e_per_s = 0.01;
};

// A run folder as greenmoe train writes it, with made-up but plausible numbers.
void write_fake_run(const std::filesystem::path& dir, const FakeRun& f) {
    std::filesystem::create_directories(dir);
    const bool moe = f.mlp != "dense";
    json config = {{"model",
                    {{"n_layer", 2},
                     {"n_head", 2},
                     {"n_embd", 32},
                     {"block_size", 64},
                     {"mlp", f.mlp},
                     {"attn", "mha"},
                     {"n_experts", f.n_experts},
                     {"top_k", 2}}},
                   {"train", {{"max_steps", f.train_records * 2}}}};
    auto start = [&](int from) {
        return json{{"type", "start"},        {"resumed_from_step", from}, {"parameters", 123456},
                    {"tokens_per_step", 512}, {"grad_accum_steps", 1},     {"config", config}}
            .dump();
    };
    std::string log = start(0) + "\n";
    const int last_step = (f.train_records - 1) * 2;
    double seconds = 0;
    for (int i = 0; i < f.train_records; ++i) {
        const int step = 2 * i;
        if (f.resumed && i == f.train_records / 2) log += start(step) + "\n";
        if (step % f.val_every == 0)
            log +=
                json{{"type", "val"}, {"step", step}, {"val_loss", 10.0 - 0.2 * i}}.dump() + "\n";
        if (f.eval_every > 0 && step > 0 && step % f.eval_every == 0) {
            log += json{{"type", "eval"},          {"step", step},
                        {"task", "hellaswag"},     {"items", 200},
                        {"acc", 0.24 + 0.002 * i}, {"acc_norm", 0.25 + 0.003 * i},
                        {"seconds", 1.5}}
                       .dump() +
                   "\n";
        }
        seconds += 0.8;
        json t = {{"type", "train"},
                  {"step", step},
                  {"loss", 10.5 - 0.3 * i},
                  {"lr", 1e-3},
                  {"grad_norm", 1.2},
                  {"tokens", 512 * (step + 1)},
                  {"tokens_per_s", 600.0 + 5 * i},
                  {"step_ms", 800.0},
                  {"train_seconds", seconds}};
        if (moe) {
            json layers = json::array();
            for (int layer = 0; layer < 2; ++layer) {
                std::vector<double> load(f.n_experts, 1.0 / f.n_experts);
                load[0] += 0.1 * layer;
                load[1] -= 0.1 * layer;
                layers.push_back({{"layer", layer},
                                  {"kind", "mlp"},
                                  {"load", load},
                                  {"dropped", 0.01},
                                  {"load_cv", 0.2}});
            }
            t["aux_loss"] = 0.01;
            t["moe"] = layers;
        }
        if (f.energy) {
            t["energy_j"] = 40.0 * seconds;
            t["co2e_g"] = f.co2e_per_s * seconds;
            t["j_per_token"] = 0.05;
            t["energy_source"] = "estimate";
        }
        log += t.dump() + "\n";
    }
    json done = {{"type", "done"},
                 {"step", last_step + 1},
                 {"train_loss", 10.5 - 0.3 * (f.train_records - 1)},
                 {"tokens", 512 * (last_step + 1)},
                 {"train_seconds", seconds}};
    log += done.dump() + "\n";
    log += json{{"type", "sample"}, {"step", last_step}, {"text", "<script>alert(1)</script> & co"}}
               .dump() +
           "\n";
    testing::write_text_file(dir / "log.jsonl", log);
}

TEST(ReportHtml, RunWithoutEnergyOrEvalSaysNotRecorded) {
    testing::TempDir tmp;
    FakeRun f;
    f.mlp = "dense";
    f.energy = false;
    f.eval_every = 0;
    write_fake_run(tmp / "dense<run>", f);
    const std::string page = render_report_html({read_run(tmp / "dense<run>")});
    EXPECT_NE(page.find("dense&lt;run&gt;"), std::string::npos);
    EXPECT_EQ(page.find("dense<run>"), std::string::npos);
    EXPECT_EQ(page.find("<script>alert"), std::string::npos);  // the sample is escaped
    EXPECT_NE(page.find("Not recorded in this run, so not plotted: HellaSwag accuracy, energy "
                        "over time, CO2e over time."),
              std::string::npos);
    EXPECT_EQ(svg_by_id(page, "plot-hellaswag"), "");
    EXPECT_EQ(svg_by_id(page, "plot-energy"), "");
    EXPECT_EQ(svg_by_id(page, "plot-figure1"), "");
    EXPECT_EQ(svg_by_id(page, "plot-load-0"), "");
    EXPECT_EQ(page.find(escape_xml(kGreenAlgorithmsCredit)), std::string::npos);  // no CO2e shown
    // 10 train + 2 val points.
    EXPECT_EQ(count(svg_by_id(page, "plot-loss"), "class=\"pt\""), 12u);
    EXPECT_EQ(count(svg_by_id(page, "plot-tokens-per-s"), "class=\"pt\""), 10u);
    EXPECT_NE(page.find("none (dense)"), std::string::npos);
}

TEST(ReportHtml, PageIsSelfContained) {
    testing::TempDir tmp;
    write_fake_run(tmp / "a", FakeRun{});
    const std::string page = render_report_html({read_run(tmp / "a")});
    EXPECT_EQ(page.find("http://"), std::string::npos);
    EXPECT_EQ(page.find("https://"), std::string::npos);
    EXPECT_EQ(page.find("<link"), std::string::npos);
    EXPECT_EQ(page.find(" src="), std::string::npos);
    EXPECT_EQ(page.find("@import"), std::string::npos);
    EXPECT_EQ(page.find("url(h"), std::string::npos);
    EXPECT_NE(page.find(escape_xml(kGreenAlgorithmsCredit)), std::string::npos);
    // Energy figures say that they include the PUE (here without its value: none logged).
    EXPECT_NE(page.find("g CO2e incl. PUE, estimated<"), std::string::npos);
    EXPECT_NE(page.find("123k"), std::string::npos);  // parameters
}

TEST(ReportHtml, LogAxesWhenRunsSpanOverTwoDecades) {
    testing::TempDir tmp;
    FakeRun cheap, dear;
    cheap.co2e_per_s = 0.001;
    dear.co2e_per_s = 1.0;
    write_fake_run(tmp / "cheap", cheap);
    write_fake_run(tmp / "dear", dear);
    FakeRun no_eval;
    no_eval.eval_every = 0;
    write_fake_run(tmp / "no-eval", no_eval);
    std::string page = render_report_html(
        {read_run(tmp / "cheap"), read_run(tmp / "dear"), read_run(tmp / "no-eval")});
    std::string fig = svg_by_id(page, "plot-figure1");
    EXPECT_EQ(count(fig, "class=\"pt\""), 2u);
    EXPECT_EQ(count(fig, "class=\"pt-label\""), 2u);
    EXPECT_NE(fig.find("(log scale)"), std::string::npos);
    EXPECT_NE(page.find("Not plotted (no HellaSwag eval or CO2e recorded): no-eval"),
              std::string::npos);
    // The CO2e curves span the same three decades: log y; energy (same for all) stays linear.
    EXPECT_NE(svg_by_id(page, "plot-co2e").find("CO2e incl. PUE (g) (log scale)"),
              std::string::npos);
    EXPECT_EQ(svg_by_id(page, "plot-energy").find("(log scale)"), std::string::npos);

    dear.co2e_per_s = 0.005;
    write_fake_run(tmp / "dear", dear);
    page = render_report_html({read_run(tmp / "cheap"), read_run(tmp / "dear")});
    fig = svg_by_id(page, "plot-figure1");
    EXPECT_EQ(count(fig, "class=\"pt\""), 2u);
    EXPECT_EQ(fig.find("(log scale)"), std::string::npos);
    EXPECT_EQ(svg_by_id(page, "plot-co2e").find("(log scale)"), std::string::npos);
}

TEST(ReportHtml, Formats) {
    EXPECT_EQ(format_count(123456), "123k");
    EXPECT_EQ(format_count(1.5e6), "1.50M");
    EXPECT_EQ(format_count(999), "999");
    EXPECT_EQ(format_duration(12.34), "12.3 s");
    EXPECT_EQ(format_duration(725), "12 min 05 s");
    EXPECT_EQ(format_duration(7300), "2 h 01 min");
    EXPECT_EQ(format_energy(12345), "12.3 kJ (3.43 Wh)");
    EXPECT_EQ(format_energy(5), "5.00 J");
    EXPECT_EQ(format_co2e(1.234), "1.23 g CO2e");
    EXPECT_EQ(format_co2e(0.0042), "4.20 mg CO2e");
    EXPECT_EQ(format_co2e(2500), "2.50 kg CO2e");
}

std::string bin() {
    return testing::greenmoe_binary().string();
}

TEST(ReportCli, WritesBesideTheRunOrWhereAsked) {
    testing::TempDir tmp;
    write_fake_run(tmp / "a", FakeRun{});
    auto r = run_command(bin() + " report " + quote(tmp / "a"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(std::filesystem::exists(tmp / "a" / "report.html"));
    EXPECT_NE(r.output.find("report.html"), std::string::npos);

    write_fake_run(tmp / "b", FakeRun{});
    r = run_command(bin() + " report -q " + quote(tmp / "a") + " " + quote(tmp / "b") + " -o " +
                    quote(tmp / "both.html"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "");
    const std::string page = testing::read_text_file(tmp / "both.html");
    EXPECT_NE(page.find("id=\"plot-figure1\""), std::string::npos);
    // Several runs without -o: ./report.html.
    r = run_command("cd " + quote(tmp.path()) + " && " + bin() + " report -q a b");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(std::filesystem::exists(tmp / "report.html"));

    r = run_command(bin() + " report --help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("--out"), std::string::npos);
}

TEST(ReportCli, ClearErrors) {
    testing::TempDir tmp;
    auto expect_error = [](const testing::CommandResult& r, const std::string& what) {
        EXPECT_EQ(r.exit_code, 1) << r.output;
        EXPECT_EQ(r.output.rfind("greenmoe: error: ", 0), 0u) << r.output;
        EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
        EXPECT_EQ(count(r.output, "\n"), 1u) << r.output;
    };
    expect_error(run_command(bin() + " report " + quote(tmp / "missing")), "does not exist");
    std::filesystem::create_directory(tmp / "nolog");
    expect_error(run_command(bin() + " report " + quote(tmp / "nolog")), "no log.jsonl");
    write_fake_run(tmp / "bad", FakeRun{});
    std::string log = testing::read_text_file(tmp / "bad" / "log.jsonl");
    log.insert(log.find('\n') + 1, "{\"type\":\"train\",\"step\":\n");
    testing::write_text_file(tmp / "bad" / "log.jsonl", log);
    expect_error(run_command(bin() + " report " + quote(tmp / "bad")), "log.jsonl:2:");
    EXPECT_FALSE(std::filesystem::exists(tmp / "bad" / "report.html"));
    EXPECT_NE(run_command(bin() + " report").exit_code, 0);
}

TEST(ReportCli, TornLastLineIsLeftOutWithAWarning) {
    testing::TempDir tmp;
    write_fake_run(tmp / "run", FakeRun{});
    const auto log = tmp / "run" / "log.jsonl";
    const std::string whole = testing::read_text_file(log);
    const auto lines = count(whole, "\n");
    // A write cut short: half a record and no end of line.
    testing::write_text_file(log, whole + "{\"type\":\"train\",\"step\":99,\"lo");
    const auto r = run_command(bin() + " report " + quote(tmp / "run"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("greenmoe: warning: " + log.string() + ":" + std::to_string(lines + 1) +
                            ": the last line is cut off"),
              std::string::npos)
        << r.output;
    EXPECT_TRUE(std::filesystem::exists(tmp / "run" / "report.html"));
}

TEST(ReportCli, HugeAndNonFiniteValuesAreDrawn) {
    testing::TempDir tmp;
    write_fake_run(tmp / "run", FakeRun{});
    const auto log = tmp / "run" / "log.jsonl";
    // A diverged run: the loss reaches 3e10, then NaN (written as null), and the joules of a
    // large run.
    testing::write_text_file(
        log, testing::read_text_file(log) +
                 "{\"type\":\"train\",\"step\":100,\"loss\":3e10,\"energy_j\":5e13}\n"
                 "{\"type\":\"train\",\"step\":101,\"loss\":1.7e308,\"energy_j\":6e13}\n"
                 "{\"type\":\"train\",\"step\":102,\"loss\":null,\"energy_j\":7e13}\n"
                 "{\"type\":\"val\",\"step\":102,\"val_loss\":4e10}\n");
    const auto r = run_command(bin() + " report -q " + quote(tmp / "run"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string page = testing::read_text_file(tmp / "run" / "report.html");
    EXPECT_NE(page.find("NaN/inf point"), std::string::npos);
}

// Headless Chromium: its path, or "" when it is not installed.
std::string find_chromium() {
    const auto r = run_command("command -v chromium || command -v chromium-browser");
    if (r.exit_code != 0) return "";
    std::string path = r.output.substr(0, r.output.find('\n'));
    return path;
}

std::string body_attr(const std::string& dom, const std::string& name) {
    const std::regex body("<body[^>]*>");
    std::smatch m;
    if (!std::regex_search(dom, m, body)) return "<no body>";
    const std::string tag = m.str();
    const std::regex attr(" " + name + "=\"([^\"]*)\"");
    if (!std::regex_search(tag, m, attr)) return "<no " + name + ">";
    return m[1].str();
}

TEST(ReportBrowser, RendersInHeadlessChromium) {
    const char* skip = std::getenv("GREENMOE_SKIP_BROWSER_TESTS");
    if (skip && std::string(skip) == "1") GTEST_SKIP() << "GREENMOE_SKIP_BROWSER_TESTS=1";
    const std::string chromium = find_chromium();
    ASSERT_FALSE(chromium.empty())
        << "chromium is not installed: run scripts/test.sh (it installs Debian's chromium), "
           "or set GREENMOE_SKIP_BROWSER_TESTS=1 to skip this test";

    testing::TempDir tmp;
    FakeRun a;  // switch MoE, 10 train (steps 0..18), val at 0 and 10, evals at 6, 12, 18
    a.eval_every = 6;
    FakeRun b;
    b.mlp = "dense";
    b.train_records = 8;  // steps 0..14: val at 0, 10; eval at 10
    b.resumed = true;
    b.co2e_per_s = 0.5;
    write_fake_run(tmp / "run-a", a);
    write_fake_run(tmp / "run-b", b);
    const auto html = tmp / "report.html";
    auto r = run_command(bin() + " report -q " + quote(tmp / "run-a") + " " + quote(tmp / "run-b") +
                         " -o " + quote(html));
    ASSERT_EQ(r.exit_code, 0) << r.output;

    const std::string flags =
        " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
        "--hide-scrollbars --user-data-dir=" +
        quote(tmp / "profile");
    const std::string url = " 'file://" + html.string() + "'";
    const auto png = tmp / "report.png";
    r = run_command("(timeout 60 " + chromium + flags + " --screenshot=" + quote(png) +
                    " --window-size=1280,2000" + url + " >" + quote(tmp / "shot.log") + " 2>&1)");
    ASSERT_EQ(r.exit_code, 0) << testing::read_text_file(tmp / "shot.log");
    ASSERT_TRUE(std::filesystem::exists(png)) << testing::read_text_file(tmp / "shot.log");
    const std::string image = testing::read_text_file(png);
    ASSERT_GT(image.size(), 24u);
    EXPECT_EQ(image.substr(1, 3), "PNG");
    // A blank 1280×2000 page compresses to a few kB; plots make it far larger.
    EXPECT_GT(image.size(), 60000u);
    auto be32 = [&](size_t at) {
        return (uint32_t(uint8_t(image[at])) << 24) | (uint32_t(uint8_t(image[at + 1])) << 16) |
               (uint32_t(uint8_t(image[at + 2])) << 8) | uint32_t(uint8_t(image[at + 3]));
    };
    EXPECT_EQ(be32(16), 1280u);  // IHDR width
    EXPECT_EQ(be32(20), 2000u);  // IHDR height

    const auto dom_file = tmp / "dom.html";
    r = run_command("(timeout 60 " + chromium + flags + " --dump-dom" + url + " >" +
                    quote(dom_file) + " 2>" + quote(tmp / "dom.log") + ")");
    ASSERT_EQ(r.exit_code, 0) << testing::read_text_file(tmp / "dom.log");
    const std::string dom = testing::read_text_file(dom_file);
    EXPECT_EQ(body_attr(dom, "data-status"), "ok");
    EXPECT_EQ(body_attr(dom, "data-errors"), "");

    // Points per plot: loss = a 10 train + 2 val, b 8 train + 2 val; HellaSwag = acc and
    // acc_norm at a's 3 and b's 1 evals; throughput, energy and CO2e = one per train record;
    // dropped tokens and load CV = one per train record of the MoE run (mean over layers).
    const std::vector<std::pair<std::string, size_t>> expected = {
        {"plot-loss", 22}, {"plot-hellaswag", 8}, {"plot-tokens-per-s", 18}, {"plot-energy", 18},
        {"plot-co2e", 18}, {"plot-figure1", 2},   {"plot-dropped", 10},      {"plot-load-cv", 10}};
    size_t total = 0;
    for (const auto& [id, n] : expected) {
        const std::string svg = svg_by_id(dom, id);
        ASSERT_FALSE(svg.empty()) << id << " missing from the rendered page";
        EXPECT_EQ(count(svg, "class=\"pt\""), n) << id;
        total += n;
    }
    // The page's own count (querySelectorAll, run by the browser) agrees.
    EXPECT_EQ(body_attr(dom, "data-points"), std::to_string(total));
    // Expert load of the MoE run: 2 layers × 4 experts, and snapshots over time.
    const std::string load = svg_by_id(dom, "plot-load-0");
    EXPECT_EQ(count(load, "class=\"cell\""), 8u);
    EXPECT_EQ(count(load, "data-v=\"nan\""), 0u);
    // Layer 1, expert 0 got 0.25 + 0.1 in the last record.
    EXPECT_EQ(count(load, "data-v=\"" + format_number(0.25 + 0.1) + "\""), 1u);
    EXPECT_EQ(count(svg_by_id(dom, "plot-load-0-t0"), "class=\"cell\""), 8u);
    EXPECT_EQ(svg_by_id(dom, "plot-load-1"), "");  // the dense run has none
    EXPECT_NE(dom.find("Resumed"), std::string::npos);
    EXPECT_NE(dom.find("id=\"comparison\""), std::string::npos);
    EXPECT_NE(dom.find(escape_xml(kGreenAlgorithmsCredit)), std::string::npos);
}

}  // namespace
}  // namespace greenmoe::report

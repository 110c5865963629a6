// A sweep's runs aggregated over seeds: Student t quantiles against scipy, means and
// intervals against hand computations on a sweep folder written here, Welch differences,
// the CSV and the console table.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "greenmoe/energy/csv_table.h"
#include "greenmoe/sweep/sweep_summary.h"
#include "test_support.h"

namespace greenmoe::sweep {
namespace {

namespace fs = std::filesystem;
using testing::error_message;
using testing::TempDir;
using testing::write_text_file;

// scipy.stats.t.ppf(0.975, df) (tests/fixtures/sweep/student_t_quantiles.json and
// tools/fixtures/make_student_t_reference.py).
constexpr double kT975Df1 = 12.706204736174694;
constexpr double kT975Df2 = 4.302652729749462;  // exactly √(2·0.95²/(1 − 0.95²))

// ---- Student t ---------------------------------------------------------------------------

TEST(StudentT, MatchesScipyOnTheFixtureGrid) {
    const fs::path file =
        fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "sweep" / "student_t_quantiles.json";
    const auto j = nlohmann::json::parse(testing::read_text_file(file));
    const auto& cases = j.at("cases");
    ASSERT_EQ(cases.size(), 48u);  // 8 df × 6 p
    for (const auto& c : cases) {
        const double p = c.at("p"), df = c.at("df"), want = c.at("quantile");
        const double got = student_t_quantile(p, df);
        if (want == 0.0) {
            EXPECT_EQ(got, 0.0) << "p " << p << " df " << df;
        } else {
            EXPECT_NEAR(got, want, 1e-9 * std::abs(want)) << "p " << p << " df " << df;
        }
    }
}

TEST(StudentT, ClosedFormsAndSymmetry) {
    // df = 1 is the Cauchy distribution: tan(π(p − ½)) = −cot(πp), the latter accurate for
    // small p (p − ½ would round away its digits).
    for (double p : {0.6, 0.8, 0.999, 1e-9}) {
        const double want = -1.0 / std::tan(std::numbers::pi * p);
        EXPECT_NEAR(student_t_quantile(p, 1.0), want, 1e-9 * std::abs(want)) << p;
    }
    // df = 2: t = (2p − 1)·√(2 / (1 − (2p − 1)²)).
    for (double p : {0.51, 0.7, 0.975, 0.9999}) {
        const double a = 2 * p - 1, want = a * std::sqrt(2.0 / (1.0 - a * a));
        EXPECT_NEAR(student_t_quantile(p, 2.0), want, 1e-12 * std::abs(want)) << p;
    }
    EXPECT_NEAR(student_t_quantile(0.975, 2.0), kT975Df2, 1e-12 * kT975Df2);
    // Odd in p − ½, also close to the median where the mass near 0 decides.
    for (double df : {0.3, 2.5, 7.0, 250.0}) {
        for (double p : {0.5000001, 0.6, 0.95, 0.9999999}) {
            const double up = student_t_quantile(p, df), down = student_t_quantile(1.0 - p, df);
            EXPECT_GT(up, 0.0);
            EXPECT_NEAR(up, -down, 1e-9 * up) << "p " << p << " df " << df;
        }
    }
    // Far tails: df = 1 at p = 1e-300 is −1/(π·1e-300); beyond 1e300 the quantile is ±∞.
    EXPECT_NEAR(student_t_quantile(1e-300, 1.0), -1.0 / (std::numbers::pi * 1e-300),
                1e-9 * 3.2e299);
    EXPECT_EQ(student_t_quantile(0.975, 1e-3), std::numeric_limits<double>::infinity());
    EXPECT_EQ(student_t_quantile(1e-12, 0.01), -std::numeric_limits<double>::infinity());
    // A large df approaches the normal quantile 1.959963984540054.
    EXPECT_NEAR(student_t_quantile(0.975, 1e7), 1.959963984540054, 1e-6);
}

TEST(StudentT, RejectsBadArguments) {
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    constexpr double kInf = std::numeric_limits<double>::infinity();
    for (double p : {0.0, 1.0, -0.1, 1.5, kNaN}) {
        EXPECT_NE(error_message([&] { student_t_quantile(p, 3.0); }).find("p must lie in (0, 1)"),
                  std::string::npos);
    }
    for (double df : {0.0, -2.0, kNaN, kInf}) {
        EXPECT_NE(error_message([&] { student_t_quantile(0.9, df); }).find("degrees of freedom"),
                  std::string::npos);
    }
}

// ---- a sweep folder written by hand ------------------------------------------------------

// One run's final figures as the trainer logs them.
struct FakeRun {
    double val_loss = 0;
    std::optional<double> acc_norm;  // last HellaSwag eval
    std::optional<double> energy_j, co2e_g;
    int64_t tokens = 4096;
    double train_seconds = 1;
    std::vector<double> load_cv, dropped;  // per routed layer, last train record; empty: dense
    bool done = true;                      // write a done record
};

// log.jsonl as greenmoe train writes it: start, validation, two train records (MoE stats in
// each: the summary uses the last), an early and a final HellaSwag eval, done.
std::string log_text(const FakeRun& r) {
    const bool moe = !r.load_cv.empty();
    std::string out = R"({"type":"start","log_version":2,"resumed_from_step":0,"parameters":1000,)"
                      R"("tokens_per_step":2048,"config":{}})"
                      "\n"
                      R"({"type":"val","step":0,"val_loss":10.9})"
                      "\n";
    auto train = [&](int step, const std::vector<double>& cv, const std::vector<double>& dropped) {
        nlohmann::json t = {{"type", "train"},       {"step", step},
                            {"loss", 7.0},           {"tokens", r.tokens / 2 * step},
                            {"tokens_per_s", 999.0}, {"train_seconds", r.train_seconds / 2 * step}};
        if (moe) {
            nlohmann::json layers = nlohmann::json::array();
            for (size_t l = 0; l < cv.size(); ++l) {
                layers.push_back({{"layer", l},
                                  {"kind", "mlp"},
                                  {"load", {0.25, 0.25, 0.25, 0.25}},
                                  {"dropped", dropped[l]},
                                  {"load_cv", cv[l]},
                                  {"entropy", 1.3}});
            }
            t["aux_loss"] = 0.01;
            t["moe"] = layers;
        }
        if (r.energy_j) {
            t["energy_j"] = *r.energy_j / 2 * step;
            t["co2e_g"] = *r.co2e_g / 2 * step;
            t["energy_source"] = "rapl";
        }
        out += t.dump() + "\n";
    };
    // Step 1's routing differs from the end state; it must not count.
    train(1, std::vector<double>(r.load_cv.size(), 0.9),
          std::vector<double>(r.load_cv.size(), 0.5));
    if (r.acc_norm) {
        out += R"({"type":"eval","step":1,"task":"hellaswag","items":10,"acc":0.1,)"
               R"("acc_norm":0.1,"harness_acc":0.1,"harness_acc_norm":0.1})"
               "\n";
    }
    train(2, r.load_cv, r.dropped);
    out += fmt::format(R"({{"type":"val","step":2,"val_loss":{}}})", r.val_loss) + "\n";
    if (r.acc_norm) {
        // harness_acc_norm differs: the summary reads greenmoe's acc_norm.
        out += fmt::format(R"({{"type":"eval","step":2,"task":"hellaswag","items":10,"acc":0.2,)"
                           R"("acc_norm":{},"harness_acc":0.2,"harness_acc_norm":0.99}})",
                           *r.acc_norm);
        out += "\n";
    }
    if (r.done) {
        nlohmann::json d = {{"type", "done"},     {"step", 2},
                            {"train_loss", 6.5},  {"val_loss", r.val_loss},
                            {"tokens", r.tokens}, {"train_seconds", r.train_seconds}};
        if (r.energy_j) {
            d["energy_j"] = *r.energy_j;
            d["co2e_g"] = *r.co2e_g;
            d["j_per_token"] = *r.energy_j / static_cast<double>(r.tokens);
            d["energy_source"] = "rapl";
            d["pue"] = 1.0;
        }
        out += d.dump() + "\n";
    }
    return out;
}

const std::string kAux = "mlp-switch_mechanism-aux";    // the baseline
const std::string kBias = "mlp-switch_mechanism-bias";  // 3 done, 1 failed, 1 pending
const std::string kDense = "mlp-dense_mechanism-none";  // 1 done, 2 unfinished

// The runs of each setting, seeds 1, 2, 3 (dropped shares are binary fractions: their
// means are exact, so a setting whose seeds all drop the same share has variance 0).
std::vector<FakeRun> aux_runs() {
    return {
        {5.10, 0.26, 36000, 4.0, 4096, 2.0, {0.4, 0.6}, {0.015625, 0.046875}, true},
        {5.20, 0.27, 39600, 4.4, 4096, 2.5, {0.5, 0.7}, {0.03125, 0.03125}, true},
        {5.40, 0.28, 43200, 4.8, 4096, 4.0, {0.3, 0.5}, {0.0, 0.0625}, true},
    };
}
std::vector<FakeRun> bias_runs() {
    return {
        {5.00, 0.29, 32400, 3.6, 4096, 2.0, {0.1, 0.2}, {0.0, 0.0}, true},
        {5.05, 0.31, 36000, 4.0, 4096, 2.0, {0.15, 0.25}, {0.0, 0.0}, true},
        {5.30, std::nullopt, 50400, 5.6, 4096, 2.0, {0.2, 0.3}, {0.0, 0.0}, true},  // no eval
    };
}

SweepRunState run_state(const std::string& setting, const std::string& mlp,
                        const std::string& mechanism, uint64_t seed, const std::string& status) {
    SweepRunState r;
    r.setting = setting;
    r.name = fmt::format("{}_seed-{}", setting, seed);
    r.values = {{"model.mlp", mlp}, {"mechanism", mechanism}};
    r.seed = seed;
    r.status = status;
    if (status == "failed") r.error = "diverged";
    return r;
}

// The sweep: settings interleaved in sweep.json (the summary keeps first-appearance order,
// not alphabetical), the dense setting's energy only in emissions.csv.
void write_sweep(const fs::path& dir) {
    SweepState state;
    state.base = "/presets/nano-switch.json";
    state.axes = {"model.mlp", "mechanism"};
    state.baseline = kAux;
    state.spec = nlohmann::json::object();
    auto add = [&](SweepRunState r, const std::optional<FakeRun>& log) {
        if (log) {
            fs::create_directories(dir / r.name);
            write_text_file(dir / r.name / "log.jsonl", log_text(*log));
        }
        state.runs.push_back(std::move(r));
    };
    const auto aux = aux_runs(), bias = bias_runs();
    FakeRun dense{5.60, 0.25, std::nullopt, std::nullopt, 4096, 1.0, {}, {}, true};
    for (uint64_t seed = 1; seed <= 3; ++seed) {
        add(run_state(kAux, "switch", "aux", seed, "done"), aux[seed - 1]);
        add(run_state(kBias, "switch", "bias", seed, "done"), bias[seed - 1]);
        if (seed == 1) add(run_state(kDense, "dense", "none", 1, "done"), dense);
    }
    FakeRun cut = bias[0];
    cut.done = false;
    add(run_state(kBias, "switch", "bias", 4, "failed"), cut);
    add(run_state(kBias, "switch", "bias", 5, "pending"), std::nullopt);
    FakeRun no_done = dense;
    no_done.done = false;
    // "done" in sweep.json, but the log has no done record / the folder is gone.
    add(run_state(kDense, "dense", "none", 2, "done"), no_done);
    add(run_state(kDense, "dense", "none", 3, "done"), std::nullopt);
    write_sweep_state(dir, state);
    write_text_file(dir / (kDense + "_seed-1") / "emissions.csv",
                    "timestamp,duration,emissions,energy_consumed,pue\n"
                    "2024-01-01T00:00:00,1.0,0.0006,0.005,1.0\n");
}

// Mean and t(0.975, n−1)·s/√n computed here, with the quantile from scipy.
struct Hand {
    double mean, half_width;
};
Hand by_hand(const std::vector<double>& v) {
    const double n = double(v.size());
    double sum = 0;
    for (double x : v) sum += x;
    const double mean = sum / n;
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    const double t = v.size() == 3   ? kT975Df2
                     : v.size() == 2 ? kT975Df1
                                     : std::numeric_limits<double>::quiet_NaN();
    return {mean, t * std::sqrt(ss / (n - 1)) / std::sqrt(n)};
}

double variance(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    const double mean = sum / double(v.size());
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    return ss / double(v.size() - 1);
}

// The values of one metric over a setting's runs, as this test wrote them.
std::vector<double> metric_values(const std::vector<FakeRun>& runs, Metric m) {
    std::vector<double> v;
    for (const FakeRun& r : runs) {
        switch (m) {
            case Metric::ValLoss:
                v.push_back(r.val_loss);
                break;
            case Metric::HellaSwagAccNorm:
                if (r.acc_norm) v.push_back(*r.acc_norm);
                break;
            case Metric::Kwh:
                v.push_back(*r.energy_j / 3.6e6);
                break;
            case Metric::Gco2e:
                v.push_back(*r.co2e_g);
                break;
            case Metric::TokensPerSecond:
                v.push_back(r.tokens / r.train_seconds);
                break;
            case Metric::JoulesPerToken:
                v.push_back(*r.energy_j / r.tokens);
                break;
            case Metric::LoadCv:
                v.push_back((r.load_cv[0] + r.load_cv[1]) / 2);
                break;
            case Metric::DroppedPct:
                v.push_back(100 * (r.dropped[0] + r.dropped[1]) / 2);
                break;
        }
    }
    return v;
}

size_t at(Metric m) {
    return static_cast<size_t>(m);
}

void expect_close(double got, double want, const std::string& what) {
    EXPECT_NEAR(got, want, 1e-12 * std::max(1.0, std::abs(want))) << what;
}

class SweepSummaryTest : public ::testing::Test {
  protected:
    void SetUp() override {
        write_sweep(dir_.path());
        summary_ = summarize_sweep(dir_.path());
    }
    const SettingSummary& setting(const std::string& name) const {
        for (const auto& s : summary_.settings)
            if (s.setting == name) return s;
        throw std::runtime_error("no setting " + name);
    }
    TempDir dir_;
    SweepSummary summary_;
};

TEST_F(SweepSummaryTest, SettingsInFirstAppearanceOrderWithRunCounts) {
    EXPECT_EQ(summary_.baseline, kAux);
    EXPECT_EQ(summary_.axes, (std::vector<std::string>{"model.mlp", "mechanism"}));
    ASSERT_EQ(summary_.settings.size(), 3u);
    EXPECT_EQ(summary_.settings[0].setting, kAux);
    EXPECT_EQ(summary_.settings[1].setting, kBias);
    EXPECT_EQ(summary_.settings[2].setting, kDense);
    const auto& bias = setting(kBias);
    EXPECT_EQ(bias.values, (std::vector<std::pair<std::string, std::string>>{
                               {"model.mlp", "switch"}, {"mechanism", "bias"}}));
    EXPECT_EQ(setting(kAux).runs_done, 3);
    EXPECT_EQ(setting(kAux).runs_failed, 0);
    EXPECT_EQ(setting(kAux).runs_unfinished, 0);
    EXPECT_EQ(bias.runs_done, 3);
    EXPECT_EQ(bias.runs_failed, 1);
    EXPECT_EQ(bias.runs_unfinished, 1);
    EXPECT_EQ(setting(kDense).runs_done, 1);
    EXPECT_EQ(setting(kDense).runs_failed, 0);
    EXPECT_EQ(setting(kDense).runs_unfinished, 2);  // no done record; folder gone
    ASSERT_EQ(bias.runs.size(), 3u);
    EXPECT_EQ(bias.runs[2].name, kBias + "_seed-3");
    EXPECT_EQ(bias.runs[2].seed, 3u);
    EXPECT_FALSE(bias.runs[2].metrics[at(Metric::HellaSwagAccNorm)].has_value());
}

TEST_F(SweepSummaryTest, MeansAndIntervalsMatchHandComputation) {
    for (const auto& [name, runs] : {std::pair{kAux, aux_runs()}, std::pair{kBias, bias_runs()}}) {
        const SettingSummary& s = setting(name);
        for (Metric m : kAllMetrics) {
            const std::string what = name + " " + metric_id(m);
            const std::vector<double> v = metric_values(runs, m);
            const auto& e = s.metrics[at(m)];
            ASSERT_TRUE(e.has_value()) << what;
            EXPECT_EQ(e->n, static_cast<int>(v.size())) << what;
            const Hand h = by_hand(v);
            expect_close(e->mean, h.mean, what);
            ASSERT_TRUE(e->half_width.has_value()) << what;
            expect_close(*e->half_width, h.half_width, what);
        }
    }
    // Spot checks in plain numbers.
    const auto& aux = setting(kAux);
    expect_close(aux.metrics[at(Metric::ValLoss)]->mean, 15.7 / 3, "val loss");
    expect_close(*aux.metrics[at(Metric::ValLoss)]->half_width, kT975Df2 * std::sqrt(0.07 / 3 / 3),
                 "val loss ci");
    expect_close(aux.metrics[at(Metric::Kwh)]->mean, 0.011, "kWh");
    expect_close(aux.metrics[at(Metric::LoadCv)]->mean, 0.5, "load cv (last record)");
    EXPECT_EQ(aux.metrics[at(Metric::DroppedPct)]->mean, 3.125);  // fraction × 100
    EXPECT_EQ(*aux.metrics[at(Metric::DroppedPct)]->half_width, 0.0);
    // HellaSwag over the two runs that have it: t(0.975, 1).
    const auto& hs = *setting(kBias).metrics[at(Metric::HellaSwagAccNorm)];
    EXPECT_EQ(hs.n, 2);
    expect_close(hs.mean, 0.30, "hellaswag");
    expect_close(*hs.half_width, kT975Df1 * std::sqrt(2e-4) / std::sqrt(2.0), "hellaswag ci");
}

TEST_F(SweepSummaryTest, SingleDenseRunHasNoIntervalAndNoRoutingFigures) {
    const SettingSummary& dense = setting(kDense);
    const auto& val = dense.metrics[at(Metric::ValLoss)];
    ASSERT_TRUE(val.has_value());
    EXPECT_EQ(val->n, 1);
    EXPECT_DOUBLE_EQ(val->mean, 5.60);
    EXPECT_FALSE(val->half_width.has_value());
    EXPECT_FALSE(dense.metrics[at(Metric::LoadCv)].has_value());
    EXPECT_FALSE(dense.metrics[at(Metric::DroppedPct)].has_value());
    // Energy from emissions.csv: 0.005 kWh, 0.6 g, 18000 J / 4096 tokens.
    expect_close(dense.metrics[at(Metric::Kwh)]->mean, 0.005, "kWh");
    expect_close(dense.metrics[at(Metric::Gco2e)]->mean, 0.6, "g");
    expect_close(dense.metrics[at(Metric::JoulesPerToken)]->mean, 18000.0 / 4096, "J/token");
    expect_close(dense.metrics[at(Metric::TokensPerSecond)]->mean, 4096.0, "tokens/s");
    // Its difference from the baseline: a mean, but no interval from one run.
    const auto& d = dense.diff_from_baseline[at(Metric::ValLoss)];
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->n, 1);
    expect_close(d->mean, 5.60 - 15.7 / 3, "dense − aux");
    EXPECT_FALSE(d->half_width.has_value());
    EXPECT_FALSE(dense.diff_from_baseline[at(Metric::LoadCv)].has_value());
}

TEST_F(SweepSummaryTest, WelchDifferencesFromBaseline) {
    for (const auto& d : setting(kAux).diff_from_baseline) EXPECT_FALSE(d.has_value());
    const SettingSummary& bias = setting(kBias);
    const auto aux = aux_runs(), mine = bias_runs();
    for (Metric m : kAllMetrics) {
        const std::string what = metric_id(m);
        const std::vector<double> a = metric_values(mine, m), b = metric_values(aux, m);
        const auto& d = bias.diff_from_baseline[at(m)];
        ASSERT_TRUE(d.has_value()) << what;
        EXPECT_EQ(d->n, static_cast<int>(std::min(a.size(), b.size()))) << what;
        expect_close(d->mean, by_hand(a).mean - by_hand(b).mean, what);
        const double v1 = variance(a) / a.size(), v2 = variance(b) / b.size();
        const double se = std::sqrt(v1 + v2);
        ASSERT_TRUE(d->half_width.has_value()) << what;
        if (se == 0) {
            EXPECT_EQ(*d->half_width, 0.0) << what;  // dropped %: every seed the same
            continue;
        }
        const double df =
            (v1 + v2) * (v1 + v2) / (v1 * v1 / (a.size() - 1.0) + v2 * v2 / (b.size() - 1.0));
        expect_close(*d->half_width, student_t_quantile(0.975, df) * se, what);
    }
    EXPECT_EQ(*bias.diff_from_baseline[at(Metric::DroppedPct)]->half_width, 0.0);
    // Two cases against scipy directly. val loss: df = 3.989684813753582,
    // t.ppf(0.975, df) = 2.7792784154917336.
    const auto& val = *bias.diff_from_baseline[at(Metric::ValLoss)];
    expect_close(val.mean, 15.35 / 3 - 15.7 / 3, "val loss diff");
    EXPECT_NEAR(*val.half_width, 2.7792784154917336 * std::sqrt(0.0775 / 3 / 3 + 0.07 / 3 / 3),
                1e-9);
    // HellaSwag, n = 2 against n = 3: df = 1.6842105263157894 (= 32/19), t = 5.1762316285465175.
    const auto& hs = *bias.diff_from_baseline[at(Metric::HellaSwagAccNorm)];
    EXPECT_EQ(hs.n, 2);
    expect_close(hs.mean, 0.03, "hellaswag diff");
    EXPECT_NEAR(*hs.half_width, 5.1762316285465175 * std::sqrt(2e-4 / 2 + 1e-4 / 3), 1e-9);
    // tokens/s: the bias runs all ran at 2048/s (variance 0): df = n_aux − 1 = 2.
    const auto& tps = *bias.diff_from_baseline[at(Metric::TokensPerSecond)];
    const std::vector<double> aux_tps = {2048, 1638.4, 1024};
    expect_close(*tps.half_width, kT975Df2 * std::sqrt(variance(aux_tps) / 3), "tokens/s diff");
}

TEST(SweepSummary, EstimateHelpers) {
    const Estimate one = estimate_mean({2.5});
    EXPECT_EQ(one.n, 1);
    EXPECT_EQ(one.mean, 2.5);
    EXPECT_FALSE(one.half_width.has_value());
    const Estimate same = estimate_mean({2.0, 2.0, 2.0});
    EXPECT_EQ(*same.half_width, 0.0);
    const Estimate pair = estimate_mean({1.0, 3.0});
    EXPECT_NEAR(*pair.half_width, kT975Df1 * std::sqrt(2.0) / std::sqrt(2.0), 1e-12);
    const Estimate d = estimate_difference({1.0, 1.0}, {0.5, 0.5, 0.5});
    EXPECT_EQ(d.n, 2);
    EXPECT_EQ(d.mean, 0.5);
    EXPECT_EQ(*d.half_width, 0.0);
    EXPECT_FALSE(estimate_difference({1.0}, {0.5, 0.7}).half_width.has_value());
    EXPECT_NE(error_message([] { estimate_mean({}); }).find("at least one value"),
              std::string::npos);
}

TEST_F(SweepSummaryTest, CsvHasOneRowPerSetting) {
    const std::string csv = summary_csv(summary_);
    const auto rows = parse_csv(csv, "summary.csv");
    ASSERT_EQ(rows.size(), 4u);
    const auto& header = rows[0];
    ASSERT_EQ(header.size(), 5u + 4 * std::size(kAllMetrics));
    EXPECT_EQ(header[0], "setting");
    EXPECT_EQ(header[1], "model.mlp");
    EXPECT_EQ(header[2], "mechanism");
    EXPECT_EQ(header[3], "runs");
    EXPECT_EQ(header[4], "failed");
    EXPECT_EQ(header[5], "val_loss_mean");
    EXPECT_EQ(header[6], "val_loss_ci95");
    EXPECT_EQ(header[7], "val_loss_diff");
    EXPECT_EQ(header[8], "val_loss_diff_ci95");
    EXPECT_EQ(header.back(), "dropped_pct_diff_ci95");
    auto column = [&](const std::string& name) {
        return static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
    };
    // Baseline: means and intervals, no differences.
    const auto& aux = rows[1];
    EXPECT_EQ(aux[0], kAux);
    EXPECT_EQ(aux[1], "switch");
    EXPECT_EQ(aux[2], "aux");
    EXPECT_EQ(aux[3], "3");
    EXPECT_EQ(aux[4], "0");
    EXPECT_EQ(std::stod(aux[column("val_loss_mean")]),
              setting(kAux).metrics[at(Metric::ValLoss)]->mean);  // round-trips
    EXPECT_EQ(aux[column("dropped_pct_mean")], "3.125");
    EXPECT_EQ(aux[column("dropped_pct_ci95")], "0");
    EXPECT_EQ(aux[column("val_loss_diff")], "");
    EXPECT_EQ(aux[column("val_loss_diff_ci95")], "");
    const auto& bias = rows[2];
    EXPECT_EQ(bias[3], "3");
    EXPECT_EQ(bias[4], "1");
    EXPECT_EQ(std::stod(bias[column("val_loss_diff_ci95")]),
              *setting(kBias).diff_from_baseline[at(Metric::ValLoss)]->half_width);
    // One dense run: no intervals, no routing figures.
    const auto& dense = rows[3];
    EXPECT_EQ(dense[1], "dense");
    EXPECT_EQ(dense[column("val_loss_mean")], "5.6");
    EXPECT_EQ(dense[column("val_loss_ci95")], "");
    EXPECT_NE(dense[column("val_loss_diff")], "");
    EXPECT_EQ(dense[column("val_loss_diff_ci95")], "");
    EXPECT_EQ(dense[column("load_cv_mean")], "");

    // A field with a comma or a quote is quoted.
    SweepSummary odd = summary_;
    odd.settings.resize(1);
    odd.settings[0].setting = "lr-1e-3,\"warm\"";
    const auto odd_rows = parse_csv(summary_csv(odd), "odd.csv");
    ASSERT_EQ(odd_rows.size(), 2u);
    EXPECT_EQ(odd_rows[1][0], "lr-1e-3,\"warm\"");
    EXPECT_NE(summary_csv(odd).find("\"lr-1e-3,\"\"warm\"\"\""), std::string::npos);
}

TEST_F(SweepSummaryTest, ConsoleTable) {
    const std::string table = summary_table(summary_);
    // val loss: 5.2333 ± 4.3027·√(0.07/9) = 0.3795; HellaSwag 0.27 ± 0.0248.
    EXPECT_NE(table.find("5.23 ± 0.38"), std::string::npos) << table;
    EXPECT_NE(table.find("0.270 ± 0.025"), std::string::npos) << table;
    EXPECT_NE(table.find("3.125 ± 0"), std::string::npos) << table;
    EXPECT_NE(table.find("difference from baseline (" + kAux + ")"), std::string::npos) << table;
    // bias − aux val loss: −0.117 ± 0.356.
    EXPECT_NE(table.find("-0.12 ± 0.36"), std::string::npos) << table;
    // HellaSwag difference +0.030 ± 0.060.
    EXPECT_NE(table.find("+0.030 ± 0.060"), std::string::npos) << table;
    for (const char* label : {"setting", "seeds", "failed", "unfinished", "val loss",
                              "HellaSwag acc_norm", "kWh", "load CV", "dropped %"}) {
        EXPECT_NE(table.find(label), std::string::npos) << label << "\n" << table;
    }
    // The dense row: one seed, mean alone, "-" for routing figures.
    const size_t row = table.find(kDense);
    ASSERT_NE(row, std::string::npos);
    const std::string line = table.substr(row, table.find('\n', row) - row);
    EXPECT_NE(line.find("5.6 "), std::string::npos) << line;
    EXPECT_EQ(line.find("±"), std::string::npos) << line;
    EXPECT_NE(line.find(" -"), std::string::npos) << line;
}

TEST(SweepSummary, AllDenseGridHasNoRoutingColumns) {
    TempDir dir;
    SweepState state;
    state.axes = {"seed_only"};
    state.spec = nlohmann::json::object();
    for (uint64_t seed = 1; seed <= 2; ++seed) {
        SweepRunState r;
        r.setting = "dense";
        r.name = fmt::format("dense_seed-{}", seed);
        r.values = {{"seed_only", "x"}};
        r.seed = seed;
        r.status = "done";
        FakeRun run{5.0 + 0.1 * seed, std::nullopt, 100.0, 0.01, 4096, 1.0, {}, {}, true};
        fs::create_directories(dir / r.name);
        write_text_file(dir / r.name / "log.jsonl", log_text(run));
        state.runs.push_back(r);
    }
    write_sweep_state(dir.path(), state);
    const SweepSummary s = summarize_sweep(dir.path());
    const std::string table = summary_table(s);
    EXPECT_EQ(table.find("load CV"), std::string::npos) << table;
    EXPECT_EQ(table.find("dropped"), std::string::npos) << table;
    EXPECT_EQ(table.find("HellaSwag"), std::string::npos) << table;
    EXPECT_EQ(table.find("difference from baseline"), std::string::npos) << table;
    EXPECT_NE(table.find("5.15 ± 0.64"), std::string::npos) << table;  // 12.706·0.05
    // The CSV keeps every metric's columns (a stable header), empty where absent.
    const auto rows = parse_csv(summary_csv(s), "summary.csv");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].size(), 4u + 4 * std::size(kAllMetrics));
}

TEST(SweepSummary, MalformedSweepJsonNamesTheFile) {
    TempDir dir;
    write_text_file(dir / "sweep.json", "{\"sweep_version\": 1, \"runs\": [");
    const std::string message = error_message([&] { summarize_sweep(dir.path()); });
    EXPECT_NE(message.find((dir / "sweep.json").string()), std::string::npos) << message;
    EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;

    write_text_file(dir / "sweep.json",
                    R"({"sweep_version": 1, "runs": [{"name": "a", "status": "finished"}]})");
    const std::string status = error_message([&] { summarize_sweep(dir.path()); });
    EXPECT_NE(status.find((dir / "sweep.json").string() + ": runs[0].status"), std::string::npos)
        << status;

    TempDir empty;
    EXPECT_NE(error_message([&] { summarize_sweep(empty.path()); }).find("no sweep.json"),
              std::string::npos);
}

TEST(SweepSummary, MalformedRunLogNamesTheFile) {
    TempDir dir;
    SweepState state;
    state.spec = nlohmann::json::object();
    SweepRunState r;
    r.setting = "s";
    r.name = "s_seed-1";
    r.status = "done";
    state.runs.push_back(r);
    write_sweep_state(dir.path(), state);
    fs::create_directories(dir / r.name);
    write_text_file(dir / r.name / "log.jsonl", "{\"type\":\"start\"}\nnot json\n");
    const std::string message = error_message([&] { summarize_sweep(dir.path()); });
    EXPECT_NE(message.find("log.jsonl:2"), std::string::npos) << message;
}

}  // namespace
}  // namespace greenmoe::sweep

// greenmoe bench: the latency statistics, the protocol's exact token counts and timings on a
// fake decoder with a fake clock, joules from a fake meter of known power, every field of a
// row on the tiny OLMoE fixture, reductions against the baseline, and the command (a model
// folder that fails to load becomes a failed row while the others are measured).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/bench/bench_results.h"
#include "greenmoe/bench/bench_suite.h"
#include "greenmoe/bench/inference_bench.h"
#include "greenmoe/bench/latency_stats.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/eval/text_generation.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::TempDir;

// A clock the test moves; the fake decoder advances it by a fixed time per step.
struct FakeTime {
    double now_s = 100.0;
};

// A meter of constant power on the monitor's clock: joules = power × time since t = 0.
class ConstantPowerMeter final : public EnergyMeter {
  public:
    ConstantPowerMeter(double watts, bool measured)
        : watts_(watts), sources_{{"cpu", measured, "constant power (test)"}} {}
    std::string name() const override { return "constant"; }
    const std::vector<EnergySource>& sources() const override { return sources_; }
    void read(double now_s, std::span<double> joules) override { joules[0] = watts_ * now_s; }

  private:
    double watts_;
    std::vector<EnergySource> sources_;
};

CarbonSettings test_carbon() {
    CarbonSettings c;
    c.location = {"FR", "Europe", "France", "Any", 50.0};
    c.pue_measured = 1.0;
    c.pue_estimated = 1.5;
    c.pue_origin = "test";
    return c;
}

std::unique_ptr<EnergyMonitor> constant_power_monitor(double watts, std::function<double()> clock) {
    std::vector<std::unique_ptr<EnergyMeter>> meters;
    meters.push_back(std::make_unique<ConstantPowerMeter>(watts, true));
    return std::make_unique<EnergyMonitor>(std::move(meters), test_carbon(),
                                           MonitorSettings{0.0, std::move(clock)});
}

// Predicts (last token + 1) mod vocab for every sequence; each step takes `step_s` of fake time.
class FakeDecoder final : public DecodeBatch {
  public:
    FakeDecoder(int batch, int max_len, int vocab, FakeTime* time, double step_s)
        : max_len_(max_len),
          vocab_(vocab),
          time_(time),
          step_s_(step_s),
          lengths_(size_t(batch), 0),
          logits_(size_t(batch) * size_t(vocab), 0.0f) {}
    const std::vector<float>& step(const std::vector<std::vector<int32_t>>& ids) override {
        for (size_t s = 0; s < ids.size(); ++s) {
            if (ids[s].empty()) continue;
            lengths_[s] += int(ids[s].size());
            EXPECT_LE(lengths_[s], max_len_) << "sequence " << s << " overran its cache";
            float* row = logits_.data() + s * size_t(vocab_);
            std::fill(row, row + vocab_, 0.0f);
            row[(ids[s].back() + 1) % vocab_] = 1.0f;
        }
        time_->now_s += step_s_;
        return logits_;
    }
    int length(int s) const override { return lengths_[size_t(s)]; }

  private:
    int max_len_, vocab_;
    FakeTime* time_;
    double step_s_;
    std::vector<int> lengths_;
    std::vector<float> logits_;
};

TEST(BenchLatencyStats, PercentilesAsNumpyAndCoefficientOfVariation) {
    const std::vector<double> v = {4.0, 1.0, 3.0, 2.0, 10.0};
    EXPECT_DOUBLE_EQ(mean_of(v), 4.0);
    // numpy.percentile([1, 2, 3, 4, 10], [50, 90]) = [3.0, 7.6]
    EXPECT_DOUBLE_EQ(percentile_of(v, 0.5), 3.0);
    EXPECT_NEAR(percentile_of(v, 0.9), 7.6, 1e-12);
    EXPECT_DOUBLE_EQ(percentile_of({5.0}, 0.9), 5.0);
    EXPECT_TRUE(std::isnan(percentile_of({}, 0.5)));
    // Sample std of {1, 2, 3} is 1, mean 2.
    EXPECT_DOUBLE_EQ(*coefficient_of_variation({1.0, 2.0, 3.0}), 0.5);
    EXPECT_FALSE(coefficient_of_variation({1.0}).has_value());
}

TEST(BenchProtocol, PromptsAreCutOrRepeatedToTheExactLength) {
    EXPECT_EQ(fit_prompt({1, 2, 3, 4, 5}, 3), (std::vector<int32_t>{1, 2, 3}));
    EXPECT_EQ(fit_prompt({7, 8}, 5), (std::vector<int32_t>{7, 8, 7, 8, 7}));
    EXPECT_THROW(fit_prompt({}, 4), Error);
}

// Known power, known time: the joules, tokens and latencies are exact.
TEST(BenchProtocol, FakeMeterOfKnownPowerGivesTheExpectedJoules) {
    FakeTime time;
    const double watts = 37.5, step_s = 0.25;
    const int vocab = 11, new_tokens = 7;
    auto clock = [&time] { return time.now_s; };
    auto monitor = constant_power_monitor(watts, clock);
    const DecoderFactory start = [&](int batch, int max_len) {
        return std::make_unique<FakeDecoder>(batch, max_len, vocab, &time, step_s);
    };
    const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4}, {9, 9, 9, 10}};
    const RunMeasurement m =
        run_protocol_once(start, vocab, prompts, new_tokens, {monitor.get(), clock});
    EXPECT_EQ(m.prompt_tokens, 8);
    EXPECT_EQ(m.generated_tokens, 2 * new_tokens);
    // Greedy on the fake's logits: each token is the one after the last, mod the vocabulary.
    EXPECT_EQ(m.generated[0], (std::vector<int32_t>{5, 6, 7, 8, 9, 10, 0}));
    EXPECT_EQ(m.generated[1], (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6}));
    EXPECT_DOUBLE_EQ(m.ttft_s, step_s);
    ASSERT_EQ(m.itl_s.size(), size_t(new_tokens - 1));
    for (const double itl : m.itl_s) EXPECT_DOUBLE_EQ(itl, step_s);
    EXPECT_DOUBLE_EQ(m.run_s, step_s * new_tokens);
    ASSERT_TRUE(m.energy.has_value());
    const double expected_j = watts * step_s * new_tokens;
    EXPECT_NEAR(m.energy->total_joules, expected_j, 1e-6 * expected_j);
    EXPECT_NEAR(m.energy->total_joules_with_pue, expected_j, 1e-6 * expected_j);
    EXPECT_NEAR(m.energy->seconds, step_s * new_tokens, 1e-9);
    EXPECT_TRUE(m.energy->measured);
}

// A tiny OLMoE with a tokenizer, in tmp/name.
fs::path olmoe_with_tokenizer(const TempDir& tmp, const std::string& name) {
    fs::create_directories(tmp / name);
    return testing::hf_model_with_tokenizer(tmp / name, "olmoe");
}

BenchProtocol tiny_protocol() {
    BenchProtocol p;
    p.prompts = {"the hat", "a cat sat", "the bed"};
    p.prompt_tokens = 6;
    p.new_tokens = 5;  // 10 positions of the fixture's 16
    p.batches = {1, 2};
    p.warmup = 1;
    p.repeats = 3;
    return p;
}

TEST(BenchModel, EveryFieldPresentAndConsistentOnTinyOlmoe) {
    testing::ScopedThreads threads(1);
    TempDir tmp;
    const fs::path dir = olmoe_with_tokenizer(tmp, "olmoe");
    const auto model = open_language_model(dir);
    const double watts = 12.5;
    const std::function<double()> clock = [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
    };
    auto monitor = constant_power_monitor(watts, clock);
    const BenchProtocol p = tiny_protocol();
    std::vector<EnergyMeasurement> sums;
    const std::vector<BenchRow> rows =
        bench_language_model(*model, p, {monitor.get(), clock}, {}, &sums);
    ASSERT_EQ(rows.size(), 2u);
    ASSERT_EQ(sums.size(), 2u);
    const ModelSize size = model->size();
    for (size_t i = 0; i < rows.size(); ++i) {
        const BenchRow& r = rows[i];
        SCOPED_TRACE("batch " + std::to_string(r.batch));
        EXPECT_TRUE(r.ok);
        EXPECT_EQ(r.batch, p.batches[i]);
        EXPECT_EQ(r.prompt_tokens_per_run, int64_t(r.batch) * p.prompt_tokens);
        EXPECT_EQ(r.generated_tokens_per_run, int64_t(r.batch) * p.new_tokens);
        EXPECT_GT(r.ttft_s, 0.0);
        EXPECT_LT(r.ttft_s, r.run_s);
        EXPECT_GT(r.itl_mean_s, 0.0);
        EXPECT_LE(r.itl_p50_s, r.itl_p90_s);
        EXPECT_NEAR(r.prefill_tokens_per_s * r.ttft_s, double(r.prompt_tokens_per_run), 1e-6);
        EXPECT_GT(r.decode_tokens_per_s, 0.0);
        // The window encloses the timed span, on the same clock.
        EXPECT_GE(r.window_s, r.run_s);
        EXPECT_NEAR(r.energy_j, watts * r.window_s, 1e-6 * r.energy_j);
        EXPECT_NEAR(r.j_per_token * double(r.generated_tokens_per_run), r.energy_j,
                    1e-9 * r.energy_j);
        EXPECT_NEAR(r.j_per_response * r.batch, r.energy_j, 1e-9 * r.energy_j);
        EXPECT_NEAR(r.average_power_w, watts, 1e-6 * watts);
        // 50 g/kWh in France: CO2e of one run per response, × 1000.
        EXPECT_NEAR(r.co2e_g_per_1000_responses, r.energy_j / 3.6e6 * 50.0 / r.batch * 1000.0,
                    1e-9 * r.co2e_g_per_1000_responses);
        EXPECT_TRUE(r.energy_measured);
        EXPECT_FALSE(r.energy_source.empty());
        ASSERT_TRUE(r.cv_run_s.has_value());
        ASSERT_TRUE(r.cv_energy_j.has_value());
        ASSERT_TRUE(r.stable.has_value());
        EXPECT_EQ(*r.stable, *r.cv_run_s <= p.cv_threshold && *r.cv_energy_j <= p.cv_threshold);
        EXPECT_EQ(r.parameters, size.parameters);
        EXPECT_EQ(r.active_parameters, size.active_parameters);
        EXPECT_LT(r.active_parameters, r.parameters);
        EXPECT_EQ(r.experts_per_layer, (std::vector<int>{5, 5}));
        EXPECT_EQ(r.top_k, 2);
        // emissions.csv's row: the repeats' windows together.
        EXPECT_NEAR(sums[i].total_joules_with_pue, r.energy_j * p.repeats, 1e-6 * r.energy_j);
    }
}

// The bench's greedy tokens are the ones greedy generation makes.
TEST(BenchModel, TokensAreGreedyGeneration) {
    testing::ScopedThreads threads(1);
    TempDir tmp;
    const auto model = open_language_model(olmoe_with_tokenizer(tmp, "olmoe"));
    const std::vector<int32_t> prompt = fit_prompt(model->encode_prompt("the hat"), 6);
    const DecoderFactory start = [&](int batch, int max_len) {
        return model->start_decoding(batch, max_len);
    };
    const RunMeasurement m = run_protocol_once(start, model->vocab_size(), {prompt}, 8, {});
    hf::GenerateOptions greedy;
    greedy.temperature = 0.0;
    greedy.max_new_tokens = 8;  // no stop tokens: exactly 8
    EXPECT_EQ(m.generated[0], generate_tokens(*model, prompt, greedy));
    EXPECT_FALSE(m.energy.has_value());
}

TEST(BenchSuite, ReductionsAgainstTheBaselineRowOfTheSameBatch) {
    testing::ScopedThreads threads(1);
    TempDir tmp;
    const fs::path base = olmoe_with_tokenizer(tmp, "original");
    const fs::path copy = olmoe_with_tokenizer(tmp, "copy");
    BenchSuite suite;
    suite.baseline = base.string();
    suite.models = {copy.string(), (tmp / "missing").string()};
    suite.protocol = tiny_protocol();
    suite.protocol.repeats = 2;
    const std::function<double()> clock = [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
    };
    auto monitor = constant_power_monitor(20.0, clock);
    const BenchOutcome out = run_bench_suite(suite, {monitor.get(), clock});
    ASSERT_EQ(out.rows.size(), 6u);  // 3 models × 2 batch sizes
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_TRUE(out.rows[i].baseline);
        EXPECT_EQ(out.rows[i].model, base.string());
        EXPECT_EQ(*out.rows[i].experts_pruned_percent, 0.0);
        for (const auto& [name, v] : out.rows[i].reduction_percent) EXPECT_EQ(v, 0.0) << name;
    }
    for (size_t i = 2; i < 4; ++i) {
        const BenchRow& row = out.rows[i];
        const BenchRow& b = out.rows[i - 2];
        ASSERT_TRUE(row.ok);
        EXPECT_FALSE(row.baseline);
        EXPECT_EQ(row.batch, b.batch);
        EXPECT_GT(row.peak_rss_bytes, 0.0);
        EXPECT_EQ(*row.experts_pruned_percent, 0.0);  // same experts as the original
        ASSERT_EQ(row.reduction_percent.size(), reduction_figures().size());
        for (const auto& name : reduction_figures()) {
            const double x = *bench_figure(row, name), base_v = *bench_figure(b, name);
            EXPECT_NEAR(row.reduction_percent.at(name), 100.0 * (base_v - x) / base_v, 1e-9)
                << name;
        }
        EXPECT_EQ(row.reduction_percent.at("parameters"), 0.0);
    }
    for (size_t i = 4; i < 6; ++i) {
        EXPECT_FALSE(out.rows[i].ok);
        EXPECT_NE(out.rows[i].error.find("missing"), std::string::npos) << out.rows[i].error;
        EXPECT_TRUE(out.rows[i].reduction_percent.empty());
    }
}

// Idle power comes from counters only: a measured meter of known power gives it, an estimate
// gives none.
TEST(BenchSuite, IdlePowerOnlyWhereACounterMeasures) {
    testing::ScopedThreads threads(1);
    TempDir tmp;
    BenchSuite suite;
    suite.models = {olmoe_with_tokenizer(tmp, "olmoe").string()};
    suite.protocol = tiny_protocol();
    suite.protocol.batches = {1};
    suite.protocol.repeats = 1;
    suite.idle_seconds = 0.02;
    const std::function<double()> clock = [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
    };
    for (const bool measured : {true, false}) {
        std::vector<std::unique_ptr<EnergyMeter>> meters;
        meters.push_back(std::make_unique<ConstantPowerMeter>(42.0, measured));
        EnergyMonitor monitor(std::move(meters), test_carbon(), MonitorSettings{0.0, clock});
        const BenchOutcome out = run_bench_suite(suite, {&monitor, clock});
        ASSERT_EQ(out.rows.size(), 1u);
        ASSERT_TRUE(out.rows[0].ok) << out.rows[0].error;
        EXPECT_EQ(out.rows[0].energy_measured, measured);
        if (measured) {
            ASSERT_TRUE(out.rows[0].idle_power_w.has_value());
            EXPECT_NEAR(*out.rows[0].idle_power_w, 42.0, 42.0 * 1e-6);
        } else {
            EXPECT_FALSE(out.rows[0].idle_power_w.has_value());
        }
    }
}

TEST(BenchResults, JsonRoundTripAndCsvColumns) {
    BenchRow r;
    r.model = "m,1";
    r.batch = 4;
    r.ttft_s = 0.5;
    r.energy_j = 12.0;
    r.cv_run_s = 0.01;
    r.stable = true;
    r.experts_per_layer = {3, 4};
    r.reduction_percent["energy_j"] = 25.0;
    BenchRow failed;
    failed.model = "bad";
    failed.ok = false;
    failed.error = "no \"config.json\"";
    for (const BenchRow& row : {r, failed}) {
        const BenchRow back = bench_row_from_json(Json::parse(bench_row_json(row).dump()), "test");
        EXPECT_EQ(bench_row_json(back), bench_row_json(row));
    }
    const std::string csv = bench_csv({r, failed});
    const std::string header = csv.substr(0, csv.find('\n'));
    EXPECT_NE(header.find("j_per_token"), std::string::npos);
    EXPECT_NE(header.find("reduction_energy_j_percent"), std::string::npos);
    EXPECT_NE(csv.find("\"m,1\",,false,4,ok,"), std::string::npos) << csv;
    EXPECT_NE(csv.find(",3;4,"), std::string::npos);
    EXPECT_NE(csv.find("\"no \"\"config.json\"\"\""), std::string::npos);
    // Every line has as many fields as the header (no field here holds a comma unquoted).
    const size_t columns = size_t(std::count(header.begin(), header.end(), ',')) + 1;
    EXPECT_EQ(columns, bench_row_json(BenchRow{}).size() - 1 + reduction_figures().size());
}

TEST(BenchCommand, FailedModelIsARowAndTheOthersAreMeasured) {
    TempDir tmp;
    const fs::path good = olmoe_with_tokenizer(tmp, "olmoe");
    const fs::path bad = tmp / "broken";
    fs::create_directories(bad);
    testing::write_text_file(bad / "config.json", "{\"model_type\": \"olmoe\"");  // cut short
    const fs::path out = tmp / "out";
    const auto r = testing::run_command(
        testing::greenmoe_binary().string() + " bench -q --model '" + bad.string() + "' --model '" +
        good.string() + "' --prompt-tokens 4 --new-tokens 3 --batch 1,2 " +
        "--repeats 2 --warmup 0 --location FR -o '" + out.string() + "' 2>&1");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("2 of 4 rows failed"), std::string::npos) << r.output;
    const std::vector<BenchRow> rows = read_bench_rows(out);
    ASSERT_EQ(rows.size(), 4u);
    for (int i = 0; i < 2; ++i) {
        EXPECT_FALSE(rows[size_t(i)].ok);
        EXPECT_NE(rows[size_t(i)].error.find(bad.string()), std::string::npos)
            << rows[size_t(i)].error;
        EXPECT_TRUE(rows[size_t(i + 2)].ok);
        EXPECT_EQ(rows[size_t(i + 2)].generated_tokens_per_run, 3 * (i + 1));
        EXPECT_EQ(rows[size_t(i + 2)].location, "FR");
    }
    // emissions.csv: a header and one row per measured model × batch size.
    const std::string emissions = testing::read_text_file(out / "emissions.csv");
    EXPECT_EQ(std::count(emissions.begin(), emissions.end(), '\n'), 3);
    EXPECT_NE(emissions.find("bench " + good.string() + " batch 2"), std::string::npos);
    const std::string csv = testing::read_text_file(out / "bench.csv");
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
}

// A greenmoe GPT checkpoint goes through the same protocol; --no-energy leaves the energy
// figures out (not zero) and writes no emissions.csv.
TEST(BenchCommand, GreenmoeCheckpointWithoutEnergy) {
    TempDir tmp;
    const fs::path model = fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/hellaswag/tiny_gpt2";
    const auto r = testing::run_command(
        testing::greenmoe_binary().string() + " bench -q --no-energy --model '" + model.string() +
        "' --tokenizer '" + testing::tokenizer_dir().string() +
        "' --prompt-tokens 5 --new-tokens 4 --batch 3 --repeats 1 -o '" + (tmp / "out").string() +
        "' 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::vector<BenchRow> rows = read_bench_rows(tmp / "out" / "bench.jsonl");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_TRUE(rows[0].ok);
    EXPECT_EQ(rows[0].prompt_tokens_per_run, 15);
    EXPECT_EQ(rows[0].generated_tokens_per_run, 12);
    EXPECT_TRUE(rows[0].energy_source.empty());
    EXPECT_FALSE(rows[0].stable.has_value());  // one repeat: no spread to judge
    const std::string json = testing::read_text_file(tmp / "out" / "bench.jsonl");
    EXPECT_NE(json.find("\"j_per_token\":null"), std::string::npos) << json;
    EXPECT_FALSE(fs::exists(tmp / "out" / "emissions.csv"));
}

TEST(BenchCommand, HelpAndUsageErrors) {
    const std::string bin = testing::greenmoe_binary().string();
    auto r = testing::run_command(bin + " bench --help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("does not stop at an end-of-text token"), std::string::npos);
    r = testing::run_command(bin + " bench --model x --batch 0");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    r = testing::run_command(bin + " bench");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("--model"), std::string::npos);
}

}  // namespace
}  // namespace greenmoe

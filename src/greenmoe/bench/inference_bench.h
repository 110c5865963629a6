// The inference benchmark's protocol on one model: fixed prompts made an exact number of
// tokens long, greedy decoding of an exact number of new tokens, warm-up runs, then measured
// runs timed step by step with the energy of each run's window.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "greenmoe/bench/bench_results.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/eval/decode_batch.h"
#include "greenmoe/eval/language_model.h"

namespace greenmoe {

struct BenchProtocol {
    std::vector<std::string> prompts;  // empty: default_bench_prompts()
    int prompt_tokens = 32;            // per sequence
    int new_tokens = 32;               // per sequence; never cut short by an EOS
    std::vector<int> batches = {1};    // sequences decoded together; sequence s takes prompt s % n
    int warmup = 1;                    // unmeasured runs first (caches, page faults, threads)
    int repeats = 3;                   // measured runs
    double cv_threshold = 0.05;        // repeats disagreeing more than this are flagged unstable
};

// Eight short English prompts of mixed kinds (instruction, story, code, question).
const std::vector<std::string>& default_bench_prompts();

// `ids` made exactly `length` long: cut after its first `length` tokens, or repeated from its
// start until it is that long (a prompt's own tokens keep the text in the model's domain).
// Error for empty ids.
std::vector<int32_t> fit_prompt(const std::vector<int32_t>& ids, int length);

// Sums two measurements of one monitor: seconds, joules per source, kWh, CO2e; a zero `a`
// (nothing measured yet) gives `b`.
EnergyMeasurement add_measurements(const EnergyMeasurement& a, const EnergyMeasurement& b);

// The meters a run reads: an energy monitor (nullptr: no energy) and the clock the timings use
// (empty: std::chrono::steady_clock). Give the monitor the same clock to make the window's
// seconds and the timings agree exactly (tests).
struct BenchMeters {
    EnergyMonitor* energy = nullptr;
    std::function<double()> clock;
};

// One run: the prefill step over every prompt (TTFT ends with the first greedy pick), then one
// step per further token. Tokens are counted as they are picked.
struct RunMeasurement {
    double ttft_s = 0.0;
    double run_s = 0.0;         // prefill to the last token's pick
    std::vector<double> itl_s;  // each decode step (a token for every sequence)
    int64_t prompt_tokens = 0, generated_tokens = 0;
    std::vector<std::vector<int32_t>> generated;  // per sequence
    std::optional<EnergyMeasurement> energy;      // the run's window, when a monitor is given
};
RunMeasurement run_protocol_once(const DecoderFactory& start, int vocab,
                                 const std::vector<std::vector<int32_t>>& prompts, int new_tokens,
                                 const BenchMeters& meters);

// The protocol on one model: one row per batch size, with the timings, energy, stability and
// size filled in (not peak memory, pruning or reductions: bench_suite.h adds those). Error when
// prompt + new tokens do not fit the model's window. `energy_sums`, when given, receives per
// row the sum of its measured runs' windows (for emissions.csv).
std::vector<BenchRow> bench_language_model(
    const LanguageModel& model, const BenchProtocol& protocol, const BenchMeters& meters,
    const std::function<void(const std::string&)>& progress = {},
    std::vector<EnergyMeasurement>* energy_sums = nullptr);

}  // namespace greenmoe

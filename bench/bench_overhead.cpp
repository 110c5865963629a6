// The cost of `greenmoe bench`'s measuring: decode tokens/s of a synthetic OLMoE-shaped model
// (bf16, OLMoE-1B-7B's layer shapes, 2 layers, vocabulary 4096) through the bench protocol with
// its meters on (an EnergyMonitor as `greenmoe bench` opens it: RAPL/NVML where readable, the
// Green Algorithms estimate otherwise, its background poller, a window per run, a clock read
// per token), against the bare generation loop on the same decoder, alternating in one run.
// Target: ratio ≥ 0.98.
//
//   bench/bench_overhead [--layers 2] [--prompt 32] [--tokens 64] [--pairs 6] [--vocab 4096]
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/bench/inference_bench.h"
#include "greenmoe/bench/latency_stats.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/eval/hf_decode_batch.h"
#include "greenmoe/hf/hf_model.h"
#include "synthetic_hf_model.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
    int layers = 2, prompt = 32, tokens = 64, pairs = 6, vocab = 4096;
};

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The loop `greenmoe bench` measures, with nothing measured: prefill, then greedy steps.
// Returns decode tokens/s (the tokens after the first, over the steps that made them).
double bare_decode_tokens_per_s(const greenmoe::DecoderFactory& start, int vocab,
                                const std::vector<int32_t>& prompt, int tokens) {
    auto decoder = start(1, int(prompt.size()) + tokens - 1);
    const std::vector<float>* logits = &decoder->step({prompt});
    int32_t next =
        int32_t(std::max_element(logits->begin(), logits->begin() + vocab) - logits->begin());
    const auto t0 = Clock::now();
    for (int t = 1; t < tokens; ++t) {
        logits = &decoder->step({{next}});
        next =
            int32_t(std::max_element(logits->begin(), logits->begin() + vocab) - logits->begin());
    }
    return double(tokens - 1) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i];
        const int value = std::atoi(argv[i + 1]);
        if (key == "--layers")
            o.layers = value;
        else if (key == "--prompt")
            o.prompt = value;
        else if (key == "--tokens")
            o.tokens = value;
        else if (key == "--pairs")
            o.pairs = value;
        else if (key == "--vocab")
            o.vocab = value;
        else {
            std::fprintf(stderr, "unknown option %s\n", key.c_str());
            return 2;
        }
    }
    if (o.tokens < 2 || o.pairs < 1 || o.prompt < 1) {
        std::fprintf(stderr, "--tokens must be ≥ 2, --pairs and --prompt ≥ 1\n");
        return 2;
    }
    const fs::path dir =
        fs::temp_directory_path() / ("greenmoe_bench_overhead_" + std::to_string(getpid()));
    try {
        double load[3] = {};
        if (getloadavg(load, 3) < 0) load[0] = -1;
        std::printf(
            "threads %d, load average %.2f at start; OLMoE shape, %d layers, vocab %d, "
            "prompt %d, %d new tokens, %d pairs\n",
            omp_get_max_threads(), load[0], o.layers, o.vocab, o.prompt, o.tokens, o.pairs);
        bench::write_model(bench::kOlmoe, o.layers, o.vocab, dir);
        const greenmoe::hf::HfModel model = greenmoe::hf::HfModel::load(dir);
        const greenmoe::DecoderFactory start = [&](int batch, int max_len) {
            return greenmoe::hf_decode_batch(model, batch, max_len);
        };
        std::mt19937 rng(1);
        std::vector<int32_t> prompt(size_t(o.prompt));
        for (auto& id : prompt) id = int32_t(rng() % uint32_t(o.vocab));

        greenmoe::EnergyOptions energy_options;  // as `greenmoe bench` opens it by default
        greenmoe::EnergyMonitor monitor(energy_options);
        const greenmoe::BenchMeters meters{&monitor, {}};
        auto metered = [&] {
            const auto m = greenmoe::run_protocol_once(start, o.vocab, {prompt}, o.tokens, meters);
            return double(m.generated_tokens - 1) / (m.run_s - m.ttft_s);
        };
        // Warm-up of both: page faults of the mapped weights, OpenMP threads.
        bare_decode_tokens_per_s(start, o.vocab, prompt, o.tokens);
        metered();

        // bare/metered, metered/bare, …: a drift of the machine's speed falls on both alike.
        std::vector<double> bare, with, ratios;
        for (int pair = 0; pair < o.pairs; ++pair) {
            double b = 0, w = 0;
            if (pair % 2 == 0) {
                b = bare_decode_tokens_per_s(start, o.vocab, prompt, o.tokens);
                w = metered();
            } else {
                w = metered();
                b = bare_decode_tokens_per_s(start, o.vocab, prompt, o.tokens);
            }
            bare.push_back(b);
            with.push_back(w);
            ratios.push_back(w / b);
            std::printf("pair %d: bare %.2f tok/s, with meters %.2f tok/s, ratio %.4f\n", pair + 1,
                        b, w, w / b);
        }
        const double median = greenmoe::percentile_of(ratios, 0.5);
        std::printf("\nmeters: %s\n", monitor.summary_line().c_str());
        std::printf("decode tokens/s: bare %.2f, with greenmoe bench's meters %.2f (means)\n",
                    greenmoe::mean_of(bare), greenmoe::mean_of(with));
        std::printf(
            "ratio with meters / bare: median of pairs %.4f, of means %.4f (target >= "
            "0.98: %s)\n",
            median, greenmoe::mean_of(with) / greenmoe::mean_of(bare),
            median >= 0.98 ? "met" : "NOT met");
        if (getloadavg(load, 3) > 0) std::printf("load average %.2f at the end\n", load[0]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        fs::remove_all(dir);
        return 1;
    }
    fs::remove_all(dir);
    return 0;
}

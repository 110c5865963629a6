// Calibration throughput of expert pruning: the calibration pass (routing counts, gate
// weights and expert output norms of every MoE layer) against plain inference of the same
// tokens, on a synthetic OLMoE-1B-7B-shaped model (bf16 weights, HfModel), in one run. Runs
// alternate and the best of --repeats counts; the target is ≤ 10 % over inference. NAEE's
// extra statistics (every expert on every token) are timed once beside them.
//
//   bench/calibration_throughput [--layers 2] [--tokens 2048] [--length 256] [--repeats 3]
//                                [--naee 0|1]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "greenmoe/hf/hf_model.h"
#include "greenmoe/io/token_shard.h"
#include "greenmoe/moeits/calibration.h"
#include "synthetic_hf_model.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
    int layers = 2, tokens = 2048, length = 256, repeats = 3, vocab = 4096;
    bool naee = true;
};

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The same sequences and batches as the calibration pass, without an observer.
double plain_inference(const greenmoe::hf::HfModel& model, const std::vector<int32_t>& ids,
                       int length) {
    const auto t0 = Clock::now();
    std::vector<std::span<const int32_t>> sequences;
    for (size_t at = 0; at < ids.size(); at += static_cast<size_t>(length)) {
        sequences.emplace_back(ids.data() + at,
                               std::min(ids.size() - at, static_cast<size_t>(length)));
    }
    for (size_t first = 0; first < sequences.size(); first += 8) {
        const size_t count = std::min<size_t>(8, sequences.size() - first);
        std::vector<std::span<const int32_t>> batch(sequences.begin() + long(first),
                                                    sequences.begin() + long(first + count));
        std::vector<greenmoe::hf::KvCache> caches(count);
        std::vector<greenmoe::hf::KvCache*> ptrs;
        for (auto& c : caches) ptrs.push_back(&c);
        model.forward_batch(batch, ptrs);
    }
    return seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const int v = std::atoi(argv[i + 1]);
        if (k == "--layers")
            o.layers = v;
        else if (k == "--tokens")
            o.tokens = v;
        else if (k == "--length")
            o.length = v;
        else if (k == "--repeats")
            o.repeats = v;
        else if (k == "--naee")
            o.naee = v != 0;
        else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            return 2;
        }
    }
    const fs::path dir =
        fs::temp_directory_path() / ("greenmoe_calib_bench_" + std::to_string(::getpid()));
    bench::write_model(bench::kOlmoe, o.layers, o.vocab, dir / "model");
    std::mt19937 rng(11);
    std::vector<uint16_t> shard(static_cast<size_t>(o.tokens));
    for (auto& t : shard) t = static_cast<uint16_t>(rng() % static_cast<unsigned>(o.vocab));
    greenmoe::write_token_shard(dir / "calibration.bin", shard.data(), shard.size());
    const std::vector<int32_t> ids(shard.begin(), shard.end());

    greenmoe::hf::HfModel model = greenmoe::hf::HfModel::load(dir / "model");
    greenmoe::moeits::CalibrationOptions c;
    c.data = (dir / "calibration.bin").string();
    c.tokens = o.tokens;
    c.sequence_length = o.length;
    plain_inference(model, ids, o.length);  // warm-up: page in the weights
    double best_plain = 1e30, best_calib = 1e30;
    for (int r = 0; r < o.repeats; ++r) {
        best_plain = std::min(best_plain, plain_inference(model, ids, o.length));
        const auto t0 = Clock::now();
        const auto stats = greenmoe::moeits::calibrate(model, c);
        best_calib = std::min(best_calib, seconds_since(t0));
        if (stats.tokens != o.tokens) return 1;
    }
    const double overhead = best_calib / best_plain - 1.0;
    std::printf("%s-shaped, %d layers, %d tokens in sequences of %d\n", bench::kOlmoe.name.c_str(),
                o.layers, o.tokens, o.length);
    std::printf("  plain inference   %10.0f tokens/s\n", o.tokens / best_plain);
    std::printf("  calibration pass  %10.0f tokens/s   overhead %+.1f %% (target <= 10 %%): %s\n",
                o.tokens / best_calib, 100.0 * overhead, overhead <= 0.10 ? "met" : "MISSED");
    if (o.naee) {
        c.naee = true;
        const auto t0 = Clock::now();
        greenmoe::moeits::calibrate(model, c);
        const double s = seconds_since(t0);
        std::printf(
            "  with NAEE stats   %10.0f tokens/s   (every expert on every token: %.1fx "
            "inference)\n",
            o.tokens / s, s / best_plain);
    }
    fs::remove_all(dir);
    return overhead <= 0.10 ? 0 : 1;
}

// Prefill and decode speed of the Hugging Face engine on synthetic models with the layer shapes
// of Qwen1.5-MoE-A2.7B and OLMoE-1B-7B (bf16 weights in a temp HF folder, loaded through
// HfModel), against this machine's fp32 sgemm peak and memory read bandwidth measured in the
// same run, and against the PyTorch peer (bench/peers/hf_moe_forward.py: the layers as Hugging
// Face writes them, same weights, same threads) when a Python with torch is found
// ($GREENMOE_PEER_PYTHON, else python3). Runs alternate; the best of --repeats counts. The
// machine's limits are measured again beside every repeat and their best counts too: on a
// shared machine both sides of a ratio then see the same quiet moments (a peak taken once at
// the start swung the MFU between 40 % and 65 % on one binary).
//
//   bench/hf_moe_throughput [--layers 2] [--prefill 256] [--decode 16] [--repeats 3]
//                           [--vocab 4096] [--shape qwen|olmoe|both]
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/bench/peak_memory.h"
#include "greenmoe/core/half.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/hf/kernels.h"
#include "greenmoe/io/safetensors.h"
#include "sgemm_peak.h"
#include "synthetic_hf_model.h"

namespace {

namespace fs = std::filesystem;
using bench::kHidden;
using bench::Shape;
using Clock = std::chrono::steady_clock;
using greenmoe::DType;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Options {
    int layers = 2, prefill = 256, decode = 16, repeats = 3, vocab = 4096;
    std::string shape = "both";
};

// Weights each token uses: attention, router, its top_k experts, the shared expert and gate,
// per layer; the lm_head row product and one embedding row.
double active_params(const Shape& s, const Options& o) {
    const double h = kHidden;
    const double layer = 4 * h * h + s.experts * h + s.top_k * 3.0 * h * s.expert_inter +
                         (s.shared_inter > 0 ? 3.0 * h * s.shared_inter + h : 0.0);
    return o.layers * layer + o.vocab * h;
}

// Memory read bandwidth: a streaming sum over 1 GiB on all threads, best of a few passes.
double read_gbs() {
    const size_t count = size_t{1} << 28;
    std::vector<float> buf(count);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; ++i) buf[i] = float(i & 7);
    double best = 0.0, total = 0.0;
    for (int rep = 0; rep < 5; ++rep) {
        const auto start = Clock::now();
        float sum = 0.0f;
        // Sixteen partial sums per thread: vector adds with no serial dependency.
#pragma omp parallel reduction(+ : sum)
        {
            float part[16] = {};
#pragma omp for schedule(static)
            for (size_t i = 0; i < count; i += 16) {
                for (int k = 0; k < 16; ++k) part[k] += buf[i + k];
            }
            for (float p : part) sum += p;
        }
        best = std::max(best, double(count) * sizeof(float) / seconds_since(start) / 1e9);
        total += sum;
    }
    if (total < 0) std::printf("%g\n", total);  // keeps the sums alive
    return best;
}

struct Times {
    double prefill_s = 1e30, decode_s = 1e30;
    bool ok = false;
    std::string note;
};

Times run_greenmoe(const greenmoe::hf::HfModel& model, const Options& o) {
    std::mt19937 rng(1);
    std::vector<int32_t> ids(size_t(o.prefill));
    for (auto& id : ids) id = int32_t(rng() % uint32_t(o.vocab));
    greenmoe::hf::KvCache cache;
    Times t;
    auto start = Clock::now();
    auto logits = model.forward(ids, cache);
    t.prefill_s = seconds_since(start);
    start = Clock::now();
    for (int i = 0; i < o.decode; ++i) {
        const int32_t next = int32_t(std::max_element(logits.end() - o.vocab, logits.end()) -
                                     (logits.end() - o.vocab));
        logits = model.forward(std::span<const int32_t>(&next, 1), cache);
    }
    t.decode_s = seconds_since(start) / std::max(1, o.decode);
    t.ok = true;
    return t;
}

Times run_peer(const std::string& python, const fs::path& dir, const Options& o) {
    Times t;
    std::string cmd =
        python + " " + (fs::path(GREENMOE_SOURCE_DIR) / "bench/peers/hf_moe_forward.py").string();
    cmd += " --model " + dir.string() + " --prefill " + std::to_string(o.prefill) + " --decode " +
           std::to_string(o.decode) + " --threads " + std::to_string(omp_get_max_threads());
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return t;
    std::string out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, pipe)) out += buf;
    if (pclose(pipe) != 0) {
        t.note = "peer failed";
        return t;
    }
    const auto line = nlohmann::json::parse(out, nullptr, false);
    if (line.is_discarded()) return t;
    t.ok = true;
    t.prefill_s = line.value("prefill_s", 1e30);
    t.decode_s = line.value("decode_s", 1e30);
    t.note =
        "torch " + line.value("torch", std::string()) + ", " + line.value("dtype", std::string());
    return t;
}

// The best of the limits measured so far: sgemm GFLOP/s and read GB/s.
struct Limits {
    double peak = 0.0, bw = 0.0;
    void measure() {
        peak = std::max(peak, bench::sgemm_gflops());
        bw = std::max(bw, read_gbs());
    }
};

void bench_shape(const Shape& s, const Options& o, Limits& limits, const std::string& python,
                 bool have_peer) {
    const fs::path dir = fs::temp_directory_path() /
                         ("greenmoe_hf_moe_" + std::to_string(getpid()) + "_" + s.model_type);
    bench::write_model(s, o.layers, o.vocab, dir);
    greenmoe::reset_peak_rss();
    const auto model = greenmoe::hf::HfModel::load(dir);
    Times best, peer;
    double rss = 0.0;
    for (int rep = 0; rep < o.repeats; ++rep) {
        // The limits' own buffers (1 GiB for the bandwidth) must not count in the model's peak
        // RSS: it is read after the first run, before they are measured again.
        if (rep > 0) limits.measure();
        const Times g = run_greenmoe(model, o);
        if (rep == 0) rss = greenmoe::peak_rss_now() / (1 << 30);
        best.prefill_s = std::min(best.prefill_s, g.prefill_s);
        best.decode_s = std::min(best.decode_s, g.decode_s);
        if (!have_peer) continue;
        const Times p = run_peer(python, dir, o);
        if (!p.ok) {
            peer.note = p.note.empty() ? "peer output unreadable" : p.note;
            continue;
        }
        peer.ok = true;
        peer.note = p.note;
        peer.prefill_s = std::min(peer.prefill_s, p.prefill_s);
        peer.decode_s = std::min(peer.decode_s, p.decode_s);
    }
    limits.measure();
    const double params = active_params(s, o);
    const double peak = limits.peak, bw = limits.bw;
    const double prefill_tps = o.prefill / best.prefill_s;
    const double mfu = 2.0 * params * prefill_tps / (peak * 1e9);
    const double decode_tps = 1.0 / best.decode_s;
    const double bound_tps = bw * 1e9 / (2.0 * params);
    std::printf("\n%s: %d layers, %d experts of %d, top-%d%s, vocab %d, %.2f GiB of bf16 weights\n",
                s.name.c_str(), o.layers, s.experts, s.expert_inter, s.top_k,
                s.shared_inter > 0 ? " + shared expert 5632 (sigmoid gate)" : "", o.vocab,
                double(fs::file_size(dir / "model.safetensors")) / (1 << 30));
    std::printf("  active parameters per token: %.1f M (%.1f MB of bf16 read per decoded token)\n",
                params / 1e6, 2.0 * params / 1e6);
    std::printf("  limits, best beside the repeats: sgemm %.1f GFLOP/s, read %.1f GB/s\n", peak,
                bw);
    std::printf("  prefill %d tokens: %8.1f tok/s  MFU %5.1f %% of the sgemm peak\n", o.prefill,
                prefill_tps, 100.0 * mfu);
    std::printf(
        "  decode (after the prefill): %6.2f tok/s  %5.1f %% of the bandwidth bound "
        "(%.2f tok/s)\n",
        decode_tps, 100.0 * decode_tps / bound_tps, bound_tps);
    std::printf("  peak RSS (load + first run): %.2f GiB\n", rss);
    if (peer.ok) {
        std::printf(
            "  PyTorch peer (%s): prefill %.1f tok/s, decode %.2f tok/s -> greenmoe "
            "%.2fx prefill, %.2fx decode\n",
            peer.note.c_str(), o.prefill / peer.prefill_s, 1.0 / peer.decode_s,
            peer.prefill_s / best.prefill_s, peer.decode_s / best.decode_s);
    } else if (have_peer) {
        std::printf("  PyTorch peer: %s\n", peer.note.c_str());
    }
    fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i];
        const char* value = argv[i + 1];
        if (key == "--layers")
            o.layers = std::atoi(value);
        else if (key == "--prefill")
            o.prefill = std::atoi(value);
        else if (key == "--decode")
            o.decode = std::atoi(value);
        else if (key == "--repeats")
            o.repeats = std::atoi(value);
        else if (key == "--vocab")
            o.vocab = std::atoi(value);
        else if (key == "--shape")
            o.shape = value;
        else {
            std::fprintf(stderr, "unknown option %s\n", key.c_str());
            return 2;
        }
    }
    std::string python = "python3";
    if (const char* p = std::getenv("GREENMOE_PEER_PYTHON"); p && *p) python = p;
    const bool have_peer =
        std::system((python + " -c 'import torch, safetensors' 2>/dev/null").c_str()) == 0;
    double load[3] = {};
    if (getloadavg(load, 3) < 0) load[0] = -1;
    const int threads = omp_get_max_threads();
    std::printf("threads %d, load average %.2f at start; kernel path %s\n", threads, load[0],
                greenmoe::hf::kernel_path_name(greenmoe::hf::best_kernel_path()));
    Limits limits;
    limits.measure();
    std::printf(
        "fp32 sgemm peak (OpenBLAS, 2048^3): %.1f GFLOP/s; memory read bandwidth: %.1f GB/s at "
        "start\n",
        limits.peak, limits.bw);
    if (!have_peer) {
        std::printf(
            "PyTorch peer: skipped (no torch + safetensors for %s; set GREENMOE_PEER_PYTHON)\n",
            python.c_str());
    }
    try {
        if (o.shape != "olmoe") bench_shape(bench::kQwen, o, limits, python, have_peer);
        if (o.shape != "qwen") bench_shape(bench::kOlmoe, o, limits, python, have_peer);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    if (getloadavg(load, 3) > 0) std::printf("\nload average %.2f at the end\n", load[0]);
    return 0;
}

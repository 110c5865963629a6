// Training throughput of the `small` model (B 8, T 256, vocab 50304) for the dense MLP and
// every MoE variant (4 experts, top-2 where it applies): tokens/s of a full step (forward,
// backward, clip, AdamW), model-FLOPs utilisation against the sgemm peak measured in the
// same run, and the ratio to dense and to the PyTorch peer (bench/peers/
// nanogpt_moe_train_step.py: the same model, batch and threads in plain PyTorch) measured in
// this run too, alternating round by round with greenmoe's steps, when a Python with torch is
// found ($GREENMOE_PEER_PYTHON, else python3). Each side's figure is its fastest step. The
// peer's parameter count and FLOPs per token must equal greenmoe's (else exit 1).
//
//   bench/train_throughput [--rounds 3] [--steps 2] [--no-peer] [Google Benchmark flags]
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/aligned_buffer.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/train/adamw.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using greenmoe::GptConfig;
using greenmoe::GptModel;

constexpr int kBatch = 8, kSeq = 256;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Options {
    int rounds = 3;  // greenmoe steps then a peer run, alternating
    int steps = 2;   // timed steps per side and round
    bool peer = true;
    std::string python = "python3";
};

struct Peer {
    bool ok = false;
    double tokens_per_second = 0.0;
    double params = 0.0, flops_per_token = 0.0;
    std::string note;  // torch version, or why there is no figure
};

struct Measured {
    double tokens_per_second = 0.0;
    double flops_per_token = 0.0;
    double params = 0.0;
    Peer peer;
};

double g_sgemm_gflops = 0.0;
std::map<std::string, Measured> g_measured;
std::vector<std::string> g_order;

GptConfig small_config(const std::string& variant) {
    GptConfig config;
    if (variant == "moa") {
        config.attn = "moa";
    } else {
        config.mlp = variant;
    }
    config.n_experts = 4;
    config.top_k = 2;
    config.n_layer = 6;
    config.n_head = 6;
    config.n_embd = 384;
    config.block_size = 256;
    config.vocab_size = 50257;
    config.finalize();
    return config;
}

// One run of the peer script for one variant: a fresh process, its warm-up step untimed.
Peer run_peer(const Options& o, const std::string& variant, const GptConfig& c) {
    Peer peer;
    const fs::path err =
        fs::temp_directory_path() / fmt::format("greenmoe_train_peer_{}.err", getpid());
    const fs::path script = fs::path(GREENMOE_SOURCE_DIR) / "bench/peers/nanogpt_moe_train_step.py";
    std::string cmd = fmt::format("{} {} --variants {} --threads {} --batch {} --seq {}", o.python,
                                  script.string(), variant, omp_get_max_threads(), kBatch, kSeq);
    cmd += fmt::format(" --n-layer {} --n-head {} --n-embd {} --block-size {}", c.n_layer, c.n_head,
                       c.n_embd, c.block_size);
    cmd += fmt::format(" --vocab-size {} --padded-vocab {} --n-experts {} --top-k {}", c.vocab_size,
                       c.padded_vocab_size, c.n_experts, c.top_k);
    cmd += fmt::format(" --expert-hidden {} --capacity-factor {} --eval-capacity-factor {}",
                       c.hidden(), c.capacity_factor, c.eval_capacity_factor);
    cmd += fmt::format(" --w-load {} --w-importance {} --lambda-z {} --w-penalty {}", c.w_load,
                       c.w_importance, c.lambda_z, c.w_penalty);
    cmd += fmt::format(" --warmup 1 --steps {} 2>{}", o.steps, err.string());
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) {
        peer.note = "could not start the peer";
        return peer;
    }
    std::string out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, pipe)) out += buf;
    const int status = pclose(pipe);
    std::string last_error;
    {
        std::ifstream in(err);
        for (std::string line; std::getline(in, line);) {
            if (!line.empty()) last_error = line;
        }
    }
    fs::remove(err);
    const auto json = nlohmann::json::parse(out, nullptr, false);
    if (status != 0 || json.is_discarded() || !json.contains("variants") ||
        !json["variants"].contains(variant)) {
        peer.note = "peer failed";
        if (!last_error.empty()) peer.note += fmt::format(": {}", last_error);
        return peer;
    }
    const auto& v = json["variants"][variant];
    peer.ok = true;
    peer.tokens_per_second = v.value("tokens_per_s", 0.0);
    peer.params = v.value("params", 0.0);
    peer.flops_per_token = v.value("flops_per_token", 0.0);
    peer.note = fmt::format("torch {}, {} threads", json.value("torch", std::string("?")),
                            json.value("threads", 0));
    return peer;
}

void BM_SgemmPeak(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    greenmoe::AlignedBuffer a(size_t(n) * n), b(size_t(n) * n), c(size_t(n) * n);
    for (size_t i = 0; i < a.size(); ++i) {
        a.data()[i] = greenmoe::rng_uniform(1, i) - 0.5f;
        b.data()[i] = greenmoe::rng_uniform(2, i) - 0.5f;
    }
    // One untimed call first: OpenBLAS starts its threads and the pages get touched.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
    double best = 0.0;
    for (auto _ : state) {
        const auto t0 = Clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                    n, 0.0f, c.data(), n);
        best = std::max(best, 2.0 * n * n * double(n) / seconds_since(t0) / 1e9);
        benchmark::DoNotOptimize(c.data());
    }
    g_sgemm_gflops = std::max(g_sgemm_gflops, best);
    state.counters["GFLOP/s"] = best;
}

// One iteration is one round: o.steps greenmoe steps, then one peer run of o.steps steps.
// The manual time is greenmoe's mean step of the round.
void BM_TrainStepSmall(benchmark::State& state, const std::string& variant, const Options& o) {
    const GptConfig config = small_config(variant);
    const int B = kBatch, T = kSeq;
    GptModel model(config, B, T);
    model.init_weights(1337);
    greenmoe::AdamW optimizer(model.layout(), {});
    std::vector<int> tokens(B * T), targets(B * T);
    for (int i = 0; i < B * T; ++i) {
        tokens[i] = static_cast<int>(greenmoe::rng_u64(3, i) % uint64_t(config.vocab_size));
        targets[i] = static_cast<int>(greenmoe::rng_u64(4, i) % uint64_t(config.vocab_size));
    }
    int64_t step_index = 0;
    auto step = [&]() {
        model.set_rng_key(uint64_t(step_index++));
        model.zero_grad();
        model.forward(tokens.data(), targets.data(), B, T);
        model.backward();
        const double norm = greenmoe::grad_norm(model.grads(), model.layout());
        greenmoe::clip_grads(model.grads(), model.layout(), norm, 1.0);
        optimizer.step(model.params(), model.grads(), 1e-4f);
    };
    step();  // warm-up: first touch of every page
    double best = 1e30;
    Peer peer;
    for (auto _ : state) {
        double round = 0.0;
        for (int s = 0; s < o.steps; ++s) {
            const auto t0 = Clock::now();
            step();
            const double dt = seconds_since(t0);
            best = std::min(best, dt);
            round += dt;
        }
        state.SetIterationTime(round / o.steps);
        if (!o.peer) continue;
        const Peer p = run_peer(o, variant, config);
        if (!p.ok) {
            if (!peer.ok) peer.note = p.note;
            continue;
        }
        const bool faster = !peer.ok || p.tokens_per_second > peer.tokens_per_second;
        if (faster) peer = p;
    }
    Measured m{double(B) * T / best, model.flops_per_token(T), double(model.num_parameters()),
               peer};
    g_measured[variant] = m;
    g_order.push_back(variant);
    state.counters["tokens/s"] = m.tokens_per_second;
    if (peer.ok) state.counters["torch tokens/s"] = peer.tokens_per_second;
}

int parse_int(const char* flag, const char* value) {
    char* end = nullptr;
    const long v = std::strtol(value, &end, 10);
    if (end == value || *end != '\0' || v < 1 || v > 1000) {
        std::fprintf(stderr, "error: %s takes a count from 1 to 1000, got '%s'\n", flag, value);
        std::exit(2);
    }
    return static_cast<int>(v);
}

void print_summary(const Options& o) {
    if (g_measured.empty()) return;
    std::printf("\nthreads %d", omp_get_max_threads());
    if (g_sgemm_gflops > 0) {
        std::printf(" | sgemm peak %.1f GFLOP/s (2048^3, best of 10)", g_sgemm_gflops);
    }
    std::printf(" | best step of %d rounds x %d steps per side\n", o.rounds, o.steps);
    std::printf("%-8s %10s %9s %10s %12s %9s %12s %9s\n", "small", "tokens/s", "MFU", "vs dense",
                "torch tok/s", "vs torch", "MFLOP/token", "params M");
    const double dense = g_measured.count("dense") ? g_measured["dense"].tokens_per_second : 0.0;
    for (const auto& name : g_order) {
        const Measured& m = g_measured[name];
        const std::string mfu =
            g_sgemm_gflops > 0
                ? fmt::format("{:.1f}%", 100.0 * m.tokens_per_second * m.flops_per_token /
                                             (g_sgemm_gflops * 1e9))
                : "-";
        const std::string vs_dense =
            dense > 0 ? fmt::format("{:.2f}x", m.tokens_per_second / dense) : "-";
        const std::string torch = m.peer.ok ? fmt::format("{:.0f}", m.peer.tokens_per_second) : "-";
        const std::string vs_torch =
            m.peer.ok ? fmt::format("{:.2f}x", m.tokens_per_second / m.peer.tokens_per_second)
                      : "-";
        std::printf("%-8s %10.0f %9s %10s %12s %9s %12.1f %9.3f\n", name.c_str(),
                    m.tokens_per_second, mfu.c_str(), vs_dense.c_str(), torch.c_str(),
                    vs_torch.c_str(), m.flops_per_token / 1e6, m.params / 1e6);
    }
}

// The peer's model must be greenmoe's: same parameter count and FLOPs per token.
bool check_peer_model() {
    bool same = true;
    std::string note;
    for (const auto& name : g_order) {
        const Measured& m = g_measured[name];
        if (!m.peer.ok) {
            if (note.empty()) note = m.peer.note;
            continue;
        }
        if (note.empty()) note = m.peer.note;
        if (m.peer.params != m.params || m.peer.flops_per_token != m.flops_per_token) {
            std::printf(
                "%s: PyTorch peer model DIFFERS: %.0f parameters, %.0f FLOPs/token; greenmoe "
                "%.0f, %.0f\n",
                name.c_str(), m.peer.params, m.peer.flops_per_token, m.params, m.flops_per_token);
            same = false;
        }
    }
    if (!note.empty()) std::printf("PyTorch peer: %s", note.c_str());
    if (same && !note.empty()) std::printf("; parameters and FLOPs/token equal greenmoe's");
    if (!note.empty()) std::printf("\n");
    return same;
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    Options o;
    if (const char* p = std::getenv("GREENMOE_PEER_PYTHON"); p && *p) o.python = p;
    for (int i = 1; i < argc; ++i) {
        const std::string key = argv[i];
        if (key == "--no-peer") {
            o.peer = false;
        } else if ((key == "--rounds" || key == "--steps") && i + 1 < argc) {
            (key == "--rounds" ? o.rounds : o.steps) = parse_int(argv[i], argv[i + 1]);
            ++i;
        } else {
            std::fprintf(stderr,
                         "error: unknown option %s (bench/train_throughput [--rounds N] "
                         "[--steps N] [--no-peer] [--benchmark_* flags])\n",
                         key.c_str());
            return 2;
        }
    }
    double load[3] = {};
    if (getloadavg(load, 3) < 0) load[0] = -1;
    std::printf("threads %d, load average %.2f at start\n", omp_get_max_threads(), load[0]);
    if (!o.peer) {
        std::printf("PyTorch peer: skipped (--no-peer)\n");
    } else if (std::system((o.python + " -c 'import torch' 2>/dev/null").c_str()) != 0) {
        o.peer = false;
        std::printf("PyTorch peer: skipped (no torch for %s; set GREENMOE_PEER_PYTHON)\n",
                    o.python.c_str());
    }
    // llm.c's CPU train_gpt2 fixes its model (from a checkpoint), batch and data paths in its
    // source, so it cannot run this configuration as built; no figure from elsewhere is shown.
    std::printf("llm.c: not compared (its train_gpt2 does not run this configuration)\n");
    std::fflush(stdout);

    benchmark::RegisterBenchmark("BM_SgemmPeak", BM_SgemmPeak)
        ->Arg(2048)
        ->Iterations(10)
        ->Unit(benchmark::kMillisecond);
    for (const char* variant : {"dense", "switch", "condmlp", "gshard", "moa", "olnn"}) {
        const std::string name = variant;
        benchmark::RegisterBenchmark(
            fmt::format("BM_TrainStepSmall/{}", name).c_str(),
            [name, &o](benchmark::State& state) { BM_TrainStepSmall(state, name, o); })
            ->Iterations(o.rounds)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    print_summary(o);
    const bool same = check_peer_model();
    if (getloadavg(load, 3) > 0) std::printf("load average %.2f at the end\n", load[0]);
    return same ? 0 : 1;
}

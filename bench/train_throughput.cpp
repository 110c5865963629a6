// Training throughput of the `small` model (B 8, T 256, vocab 50304) for the dense MLP and
// every MoE variant (4 experts, top-2 where it applies): tokens/s of a full step (forward,
// backward, clip, AdamW), model-FLOPs utilisation against the sgemm peak measured in the
// same run, and ratios to dense and to the PyTorch figures for the same configuration.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "greenmoe/core/aligned_buffer.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/train/adamw.h"

namespace {

using greenmoe::GptConfig;
using greenmoe::GptModel;

// Figures for this exact configuration on this machine class (2 cores), from the issues
// that set the targets: PyTorch 1.13 + OpenBLAS (the study's model code, 2 threads) and
// llm.c's train_gpt2.c (dense only).
const std::map<std::string, double> kPytorchTokensPerSecond = {
    {"dense", 433.0}, {"switch", 329.0}, {"gshard", 327.0}, {"olnn", 269.0}, {"condmlp", 428.0}};
constexpr double kLlmcTokensPerSecond = 170.0;

struct Measured {
    double tokens_per_second = 0.0;
    double flops_per_token = 0.0;
};
double g_sgemm_gflops = 0.0;
std::map<std::string, Measured> g_measured;
std::vector<std::string> g_order;

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
        const auto t0 = std::chrono::steady_clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                    n, 0.0f, c.data(), n);
        const double dt =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, 2.0 * n * n * double(n) / dt / 1e9);
        benchmark::DoNotOptimize(c.data());
    }
    g_sgemm_gflops = std::max(g_sgemm_gflops, best);
    state.counters["GFLOP/s"] = best;
}

void BM_TrainStepSmall(benchmark::State& state, const std::string& variant) {
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
    const int B = 8, T = 256;
    GptModel model(config, B, T);
    model.init_weights(1337);
    greenmoe::AdamW optimizer(model.layout(), {});
    std::vector<int> tokens(B * T), targets(B * T);
    for (int i = 0; i < B * T; ++i) {
        tokens[i] = static_cast<int>(greenmoe::rng_u64(3, i) % 50257);
        targets[i] = static_cast<int>(greenmoe::rng_u64(4, i) % 50257);
    }
    auto step = [&]() {
        model.zero_grad();
        model.forward(tokens.data(), targets.data(), B, T);
        model.backward();
        const double norm = greenmoe::grad_norm(model.grads(), model.layout());
        greenmoe::clip_grads(model.grads(), model.layout(), norm, 1.0);
        optimizer.step(model.params(), model.grads(), 1e-4f);
    };
    step();  // warm-up: first touch of every page
    double total = 0.0;
    int64_t steps = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        step();
        total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ++steps;
    }
    Measured m{double(B) * T * steps / total, model.flops_per_token(T)};
    g_measured[variant] = m;
    g_order.push_back(variant);
    state.counters["tokens/s"] = m.tokens_per_second;
    state.counters["ms/step"] = 1e3 * total / steps;
}

BENCHMARK(BM_SgemmPeak)->Arg(2048)->Iterations(10)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStepSmall, dense, std::string("dense"))
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStepSmall, switch, std::string("switch"))
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStepSmall, condmlp, std::string("condmlp"))
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStepSmall, gshard, std::string("gshard"))
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStepSmall, moa, std::string("moa"))
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TrainStepSmall, olnn, std::string("olnn"))
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (g_sgemm_gflops <= 0 || g_measured.empty()) return 0;
    std::printf("\nthreads %d | sgemm peak %.1f GFLOP/s (2048^3, best of 10)\n",
                omp_get_max_threads(), g_sgemm_gflops);
    const double dense = g_measured.count("dense") ? g_measured["dense"].tokens_per_second : 0.0;
    std::printf("%-8s %10s %9s %10s %9s %12s\n", "small", "tokens/s", "MFU", "vs dense", "vs torch",
                "MFLOP/token");
    for (const auto& name : g_order) {
        const Measured& m = g_measured[name];
        const double bound = g_sgemm_gflops * 1e9 / m.flops_per_token;
        const auto torch = kPytorchTokensPerSecond.find(name);
        const std::string vs_torch =
            torch != kPytorchTokensPerSecond.end()
                ? fmt::format("{:.2f}x", m.tokens_per_second / torch->second)
                : "-";  // no PyTorch figure for this variant
        std::printf("%-8s %10.0f %8.1f%% %9.2fx %9s %12.1f\n", name.c_str(), m.tokens_per_second,
                    100.0 * m.tokens_per_second / bound,
                    dense > 0 ? m.tokens_per_second / dense : 0.0, vs_torch.c_str(),
                    m.flops_per_token / 1e6);
    }
    if (dense > 0) {
        std::printf("dense: sgemm bound %.0f tokens/s | vs llm.c CPU (%.0f tok/s): %.2fx\n",
                    g_sgemm_gflops * 1e9 / g_measured["dense"].flops_per_token,
                    kLlmcTokensPerSecond, dense / kLlmcTokensPerSecond);
    }
    return 0;
}

// Google Benchmark timings of every nn op, forward and backward, at the "small" GPT-2
// training sizes (B=8, T=256, C=384, NH=6, padded vocabulary 50304). Run with
// OMP_NUM_THREADS set to the cores to use; times are wall-clock.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "greenmoe/core/rng.h"
#include "greenmoe/nn/attention.h"
#include "greenmoe/nn/cross_entropy.h"
#include "greenmoe/nn/encoder.h"
#include "greenmoe/nn/gelu.h"
#include "greenmoe/nn/layernorm.h"
#include "greenmoe/nn/matmul.h"
#include "greenmoe/nn/residual.h"

namespace {

using namespace greenmoe;
using namespace greenmoe::nn;

constexpr int kB = 8;
constexpr int kT = 256;
constexpr int kN = kB * kT;
constexpr int kC = 384;
constexpr int kNH = 6;
constexpr int kV = 50257;
constexpr int kVp = 50304;

// Uniform in [-scale, scale): cheap enough to fill the 400 MB logits buffers quickly.
std::vector<float> random_buffer(size_t n, uint64_t seed, float scale = 1.0f) {
    std::vector<float> v(n);
    const uint64_t key = rng_key(seed, 0x62656e6368);
    for (size_t i = 0; i < n; ++i) v[i] = scale * (2.0f * rng_uniform(key, i) - 1.0f);
    return v;
}

// Wall-clock time (the ops are multi-threaded) and, for --benchmark_repetitions runs on a
// shared machine, the minimum over repetitions besides the mean and median.
void common(benchmark::internal::Benchmark* b) {
    b->UseRealTime()->ComputeStatistics(
        "min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
}

void set_gflops(benchmark::State& state, double flops_per_iteration) {
    state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iteration * 1e-9,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

void set_bandwidth(benchmark::State& state, double bytes_per_iteration) {
    state.SetBytesProcessed(static_cast<int64_t>(bytes_per_iteration) * state.iterations());
}

// Args: N, C, OC, has_bias.
void BM_MatmulForward(benchmark::State& state) {
    const int N = static_cast<int>(state.range(0));
    const int C = static_cast<int>(state.range(1));
    const int OC = static_cast<int>(state.range(2));
    const bool has_bias = state.range(3) != 0;
    const auto inp = random_buffer(static_cast<size_t>(N) * C, 1);
    const auto w = random_buffer(static_cast<size_t>(OC) * C, 2, 0.05f);
    const auto bias = random_buffer(OC, 3);
    std::vector<float> out(static_cast<size_t>(N) * OC);
    for (auto _ : state) {
        matmul_forward(out.data(), inp.data(), w.data(), has_bias ? bias.data() : nullptr, N, C,
                       OC);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    set_gflops(state, 2.0 * N * C * OC);
}

void BM_MatmulBackward(benchmark::State& state) {
    const int N = static_cast<int>(state.range(0));
    const int C = static_cast<int>(state.range(1));
    const int OC = static_cast<int>(state.range(2));
    const bool has_bias = state.range(3) != 0;
    const auto inp = random_buffer(static_cast<size_t>(N) * C, 4);
    const auto w = random_buffer(static_cast<size_t>(OC) * C, 5, 0.05f);
    const auto dout = random_buffer(static_cast<size_t>(N) * OC, 6);
    std::vector<float> dinp(inp.size()), dw(w.size()), db(OC);
    for (auto _ : state) {
        matmul_backward(dinp.data(), dw.data(), has_bias ? db.data() : nullptr, dout.data(),
                        inp.data(), w.data(), N, C, OC);
        benchmark::DoNotOptimize(dinp.data());
        benchmark::ClobberMemory();
    }
    set_gflops(state, 4.0 * N * C * OC);
}

void matmul_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"N", "C", "OC", "bias"});
    b->Args({kN, kC, 3 * kC, 1});  // attention qkv
    b->Args({kN, kC, kC, 1});      // attention output projection
    b->Args({kN, kC, 4 * kC, 1});  // MLP up
    b->Args({kN, 4 * kC, kC, 1});  // MLP down
    b->Args({kN, kC, kVp, 0});     // LM head (tied, no bias)
    b->Apply(common)->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_MatmulForward)->Apply(matmul_args);
BENCHMARK(BM_MatmulBackward)->Apply(matmul_args);

void BM_LayerNormForward(benchmark::State& state) {
    const auto inp = random_buffer(static_cast<size_t>(kN) * kC, 7);
    const auto w = random_buffer(kC, 8);
    const auto bias = random_buffer(kC, 9);
    std::vector<float> out(inp.size()), mean(kN), rstd(kN);
    for (auto _ : state) {
        layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), bias.data(),
                          kN, kC);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    set_bandwidth(state, 2.0 * sizeof(float) * inp.size());
}
BENCHMARK(BM_LayerNormForward)->Apply(common)->Unit(benchmark::kMicrosecond);

void BM_LayerNormBackward(benchmark::State& state) {
    const auto inp = random_buffer(static_cast<size_t>(kN) * kC, 10);
    const auto w = random_buffer(kC, 11);
    const auto bias = random_buffer(kC, 12);
    const auto dout = random_buffer(inp.size(), 13);
    std::vector<float> out(inp.size()), mean(kN), rstd(kN);
    layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), bias.data(), kN,
                      kC);
    std::vector<float> dinp(inp.size()), dw(kC), db(kC);
    for (auto _ : state) {
        layernorm_backward(dinp.data(), dw.data(), db.data(), dout.data(), inp.data(), w.data(),
                           mean.data(), rstd.data(), kN, kC);
        benchmark::DoNotOptimize(dinp.data());
        benchmark::ClobberMemory();
    }
    set_bandwidth(state, 4.0 * sizeof(float) * inp.size());
}
BENCHMARK(BM_LayerNormBackward)->Apply(common)->Unit(benchmark::kMicrosecond);

void BM_GeluForward(benchmark::State& state) {
    const auto inp = random_buffer(static_cast<size_t>(kN) * 4 * kC, 14, 3.0f);
    std::vector<float> out(inp.size());
    for (auto _ : state) {
        gelu_forward(out.data(), inp.data(), inp.size());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    set_bandwidth(state, 2.0 * sizeof(float) * inp.size());
}
BENCHMARK(BM_GeluForward)->Apply(common)->Unit(benchmark::kMicrosecond);

void BM_GeluBackward(benchmark::State& state) {
    const auto inp = random_buffer(static_cast<size_t>(kN) * 4 * kC, 15, 3.0f);
    const auto dout = random_buffer(inp.size(), 16);
    std::vector<float> dinp(inp.size());
    for (auto _ : state) {
        gelu_backward(dinp.data(), inp.data(), dout.data(), inp.size());
        benchmark::DoNotOptimize(dinp.data());
        benchmark::ClobberMemory();
    }
    set_bandwidth(state, 4.0 * sizeof(float) * inp.size());
}
BENCHMARK(BM_GeluBackward)->Apply(common)->Unit(benchmark::kMicrosecond);

std::vector<int> random_tokens(size_t n, uint64_t seed) {
    std::vector<int> tokens(n);
    const uint64_t key = rng_key(seed, 0x746f6b);
    for (size_t i = 0; i < n; ++i) tokens[i] = static_cast<int>(rng_u64(key, i) % kV);
    return tokens;
}

void BM_EncoderForward(benchmark::State& state) {
    const auto tokens = random_tokens(kN, 17);
    const auto wte = random_buffer(static_cast<size_t>(kVp) * kC, 18);
    const auto wpe = random_buffer(static_cast<size_t>(kT) * kC, 19);
    std::vector<float> out(static_cast<size_t>(kN) * kC);
    for (auto _ : state) {
        encoder_forward(out.data(), tokens.data(), wte.data(), wpe.data(), kB, kT, kC);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    set_bandwidth(state, 3.0 * sizeof(float) * out.size());
}
BENCHMARK(BM_EncoderForward)->Apply(common)->Unit(benchmark::kMicrosecond);

void BM_EncoderBackward(benchmark::State& state) {
    const auto tokens = random_tokens(kN, 20);
    const auto dout = random_buffer(static_cast<size_t>(kN) * kC, 21);
    std::vector<float> dwte(static_cast<size_t>(kVp) * kC), dwpe(static_cast<size_t>(kT) * kC);
    for (auto _ : state) {
        encoder_backward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), kB, kT, kC);
        benchmark::DoNotOptimize(dwte.data());
        benchmark::ClobberMemory();
    }
    set_bandwidth(state, 5.0 * sizeof(float) * dout.size());
}
BENCHMARK(BM_EncoderBackward)->Apply(common)->Unit(benchmark::kMicrosecond);

// Multiply-adds actually needed by causal attention: Σ_t (t+1) per head and product.
double attention_causal_flops(int products) {
    const double pairs = static_cast<double>(kT) * (kT + 1) / 2;
    return 2.0 * products * kB * kNH * pairs * (kC / kNH);
}

struct AttentionBuffers {
    std::vector<float> qkv = random_buffer(static_cast<size_t>(kN) * 3 * kC, 22);
    std::vector<float> out = std::vector<float>(static_cast<size_t>(kN) * kC);
    std::vector<float> att = std::vector<float>(static_cast<size_t>(kB) * kNH * kT * kT);
    std::vector<float> dout = random_buffer(static_cast<size_t>(kN) * kC, 23);
    std::vector<float> dqkv = std::vector<float>(qkv.size());
    std::vector<float> scratch = std::vector<float>(att.size());

    void forward() { attention_forward(out.data(), att.data(), qkv.data(), kB, kT, kC, kNH); }
    void backward() {
        attention_backward(dqkv.data(), scratch.data(), dout.data(), qkv.data(), att.data(), kB, kT,
                           kC, kNH);
    }
};

void BM_AttentionForward(benchmark::State& state) {
    AttentionBuffers a;
    for (auto _ : state) {
        a.forward();
        benchmark::DoNotOptimize(a.out.data());
        benchmark::ClobberMemory();
    }
    set_gflops(state, attention_causal_flops(2));
}
BENCHMARK(BM_AttentionForward)->Apply(common)->Unit(benchmark::kMillisecond);

void BM_AttentionBackward(benchmark::State& state) {
    AttentionBuffers a;
    a.forward();
    for (auto _ : state) {
        a.backward();
        benchmark::DoNotOptimize(a.dqkv.data());
        benchmark::ClobberMemory();
    }
    set_gflops(state, attention_causal_flops(4));
}
BENCHMARK(BM_AttentionBackward)->Apply(common)->Unit(benchmark::kMillisecond);

void BM_AttentionForwardBackward(benchmark::State& state) {
    AttentionBuffers a;
    for (auto _ : state) {
        a.forward();
        a.backward();
        benchmark::DoNotOptimize(a.dqkv.data());
        benchmark::ClobberMemory();
    }
    set_gflops(state, attention_causal_flops(6));
}
BENCHMARK(BM_AttentionForwardBackward)->Apply(common)->Unit(benchmark::kMillisecond);

// Forward + backward in place over the logits, as the training step uses it. The logits
// are refreshed from a copy outside the timed region each iteration.
void BM_CrossEntropy(benchmark::State& state) {
    const auto source = random_buffer(static_cast<size_t>(kN) * kVp, 24, 5.0f);
    const auto targets = random_tokens(kN, 25);
    std::vector<float> logits(source.size()), losses(kN);
    for (auto _ : state) {
        state.PauseTiming();
        std::copy(source.begin(), source.end(), logits.begin());
        state.ResumeTiming();
        cross_entropy_forward_backward(losses.data(), logits.data(), logits.data(), targets.data(),
                                       kN, kV, kVp, 1.0f / kN);
        benchmark::DoNotOptimize(logits.data());
        benchmark::ClobberMemory();
    }
    set_bandwidth(state, 2.0 * sizeof(float) * source.size());
}
BENCHMARK(BM_CrossEntropy)->Apply(common)->Unit(benchmark::kMillisecond);

void BM_CrossEntropyLossOnly(benchmark::State& state) {
    const auto logits = random_buffer(static_cast<size_t>(kN) * kVp, 26, 5.0f);
    const auto targets = random_tokens(kN, 27);
    std::vector<float> losses(kN);
    for (auto _ : state) {
        cross_entropy_forward_backward(losses.data(), nullptr, logits.data(), targets.data(), kN,
                                       kV, kVp, 1.0f / kN);
        benchmark::DoNotOptimize(losses.data());
        benchmark::ClobberMemory();
    }
    set_bandwidth(state, 1.0 * sizeof(float) * logits.size());
}
BENCHMARK(BM_CrossEntropyLossOnly)->Apply(common)->Unit(benchmark::kMillisecond);

void BM_Residual(benchmark::State& state) {
    const auto a = random_buffer(static_cast<size_t>(kN) * kC, 28);
    const auto b = random_buffer(a.size(), 29);
    std::vector<float> out(a.size());
    for (auto _ : state) {
        residual_forward(out.data(), a.data(), b.data(), a.size());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    set_bandwidth(state, 3.0 * sizeof(float) * a.size());
}
BENCHMARK(BM_Residual)->Apply(common)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

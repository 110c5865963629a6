// The moa attention sub-layer (mixture of attention heads) against the independent PyTorch
// reference (tests/fixtures/moe/moa.safetensors), finite differences with routing held fixed,
// causality, one expert reducing to dense attention, and thread-count independence.
#include <gtest/gtest.h>

#include <omp.h>
#include "test_support.h"

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "grad_check.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/moa_attention.h"
#include "greenmoe/nn/attention.h"
#include "greenmoe/nn/matmul.h"
#include "greenmoe/nn/parallel.h"

namespace greenmoe {
namespace {

using testing::max_abs;
using testing::max_abs_diff;
using testing::same_bits;
using testing::ScopedThreads;

using Tensors = std::map<std::string, std::vector<float>>;

const char* const kParamNames[] = {"c_kv.weight",      "c_kv.bias",        "router.weight",
                                   "noise.weight",     "q_experts.weight", "q_experts.bias",
                                   "o_experts.weight", "o_experts.bias"};

MoaTensors bind(Tensors& t) {
    MoaTensors m;
    m.kv_w = t.at("c_kv.weight").data();
    m.kv_b = t.at("c_kv.bias").data();
    m.router_w = t.at("router.weight").data();
    m.noise_w = t.at("noise.weight").data();
    m.q_w = t.at("q_experts.weight").data();
    m.q_b = t.at("q_experts.bias").data();
    m.o_w = t.at("o_experts.weight").data();
    m.o_b = t.at("o_experts.bias").data();
    return m;
}

Tensors zeros_like(const Tensors& t) {
    Tensors z;
    for (const auto& [n, v] : t) z[n].assign(v.size(), 0.0f);
    return z;
}

GptConfig moa_config(int C, int NH, int E, int K) {
    GptConfig c;
    c.n_layer = 1;
    c.n_head = NH;
    c.n_embd = C;
    c.block_size = 64;
    c.vocab_size = 16;
    c.n_experts = E;
    c.top_k = K;
    c.finalize();
    return c;
}

// Normal weights for a layer of the given shape (std 0.5 for matrices, 0.1 for biases).
Tensors random_params(int C, int E, uint64_t seed) {
    const size_t Cs = C, Es = E;
    const std::vector<std::pair<std::string, std::pair<size_t, float>>> shapes = {
        {"c_kv.weight", {2 * Cs * Cs, 0.5f}},       {"c_kv.bias", {2 * Cs, 0.1f}},
        {"router.weight", {Es * Cs, 0.5f}},         {"noise.weight", {Es * Cs, 0.5f}},
        {"q_experts.weight", {Es * Cs * Cs, 0.5f}}, {"q_experts.bias", {Es * Cs, 0.1f}},
        {"o_experts.weight", {Es * Cs * Cs, 0.5f}}, {"o_experts.bias", {Es * Cs, 0.1f}}};
    Tensors t;
    uint64_t stream = 0;
    for (const auto& [name, spec] : shapes) {
        auto& v = t[name];
        v.resize(spec.first);
        const float std = spec.second / std::sqrt(static_cast<float>(C) / 8.0f);
        for (size_t i = 0; i < v.size(); ++i) v[i] = std * rng_normal(rng_key(seed, ++stream), i);
    }
    return t;
}

std::vector<float> random_vector(size_t n, uint64_t seed) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = rng_normal(rng_key(seed, 0x7865), i);
    return v;
}

struct Reference {
    SafetensorsFile file;
    int B, T, C, NH, E, K;
    std::vector<float> x, R, eps, bias_b1;
    Tensors params;

    Reference()
        : file(SafetensorsFile::open(std::filesystem::path(GREENMOE_SOURCE_DIR) /
                                     "tests/fixtures/moe/moa.safetensors")) {
        const auto& m = file.metadata();
        B = std::stoi(m.at("B"));
        T = std::stoi(m.at("T"));
        C = std::stoi(m.at("C"));
        NH = std::stoi(m.at("n_head"));
        E = std::stoi(m.at("E"));
        K = std::stoi(m.at("k"));
        x = file.read_f32("x");
        R = file.read_f32("R");
        eps = file.read_f32("eps");
        bias_b1 = file.read_f32("bias_b1");
        for (const char* n : kParamNames) params[n] = file.read_f32(std::string("param/") + n);
    }
    std::vector<int> ints(const std::string& name) const {
        const TensorInfo& t = file.get(name);
        std::vector<int> out(static_cast<size_t>(t.numel()));
        std::memcpy(out.data(), file.data(t), t.nbytes);
        return out;
    }
    double scalar(const std::string& name) const { return file.read_f32(name)[0]; }
};

TEST(MoaReference, ForwardChoicesAuxLossesAndGradientsMatchPyTorch) {
    Reference ref;
    const GptConfig config = moa_config(ref.C, ref.NH, ref.E, ref.K);
    const int N = ref.B * ref.T, C = ref.C, K = ref.K;
    for (const std::string mode : {"train", "eval"}) {
        for (const std::string b : {"b0", "b1"}) {
            const std::string tag = mode + "_" + b;
            SCOPED_TRACE(tag);
            MoaAttention layer(config, ref.B, ref.T);
            layer.set_draws(ref.eps.data());
            auto params = ref.params;
            const MoaTensors p = bind(params);
            std::vector<float> y(size_t(N) * C);
            const bool training = mode == "train";
            layer.forward(y.data(), ref.x.data(), p, ref.B, ref.T, training,
                          b == "b1" ? ref.bias_b1.data() : nullptr, 0);

            const auto y_ref = ref.file.read_f32(tag + "/y");
            EXPECT_LT(max_abs_diff(y_ref, y.data()), 1e-5 * (1 + max_abs(y_ref))) << "y";
            const auto choice = ref.ints(tag + "/choice");
            ASSERT_EQ(layer.choices_per_token(), K);
            for (int i = 0; i < N * K; ++i) EXPECT_EQ(layer.choice()[i], choice[i]) << i;
            const auto counts = ref.ints(tag + "/counts");
            for (int e = 0; e < ref.E; ++e) EXPECT_EQ(layer.stats().counts[e], counts[e]);
            EXPECT_EQ(layer.stats().choices, N * K);
            EXPECT_EQ(layer.stats().dropped, 0);
            EXPECT_NEAR(layer.stats().aux_load, ref.scalar(tag + "/aux_load"), 1e-5);
            EXPECT_NEAR(layer.stats().aux_importance, ref.scalar(tag + "/aux_importance"), 1e-5);
            EXPECT_NEAR(layer.stats().aux_z, ref.scalar(tag + "/aux_z"), 1e-5);
            EXPECT_NEAR(layer.stats().aux_penalty, ref.scalar(tag + "/aux_penalty"), 1e-5);
            const MoeAuxWeights all{1, 1, 1, 1};
            EXPECT_NEAR(layer.aux_loss(all),
                        ref.scalar(tag + "/aux_load") + ref.scalar(tag + "/aux_importance") +
                            ref.scalar(tag + "/aux_z") + ref.scalar(tag + "/aux_penalty"),
                        1e-5);

            // The total gradient (every case), then each auxiliary loss alone (training).
            std::vector<std::pair<std::string, MoeAuxWeights>> parts = {{"grad_total", all}};
            if (training) {
                parts.push_back({"grad_load", {1, 0, 0, 0}});
                parts.push_back({"grad_importance", {0, 1, 0, 0}});
                parts.push_back({"grad_z", {0, 0, 1, 0}});
                parts.push_back({"grad_penalty", {0, 0, 0, 1}});
            }
            for (const auto& [part, weights] : parts) {
                SCOPED_TRACE(part);
                Tensors grads = zeros_like(params);
                const MoaTensors g = bind(grads);
                std::vector<float> dx(size_t(N) * C, 0.0f);
                const std::vector<float> dy =
                    part == "grad_total" ? ref.R : std::vector<float>(size_t(N) * C, 0.0f);
                layer.backward(dx.data(), g, dy.data(), ref.x.data(), p, weights, 1.0f);
                auto expect_close = [&](const std::string& name, const std::vector<float>& got) {
                    const std::string key = tag + "/" + part + "/" + name;
                    if (!ref.file.find(key)) {  // aux parts: stored only where they can be non-zero
                        EXPECT_EQ(max_abs(got), 0.0) << name << " should get no gradient";
                        return;
                    }
                    const auto want = ref.file.read_f32(key);
                    EXPECT_LT(max_abs_diff(want, got.data()), 1e-5 + 1e-4 * max_abs(want)) << name;
                };
                expect_close("x", dx);
                for (const auto& [n, v] : grads) expect_close(n, v);
            }
        }
    }
}

// Central differences of Σ y·R + each auxiliary loss, with the routing held fixed.
TEST(MoaFiniteDifferences, EveryParameterAndAuxiliaryLoss) {
    Reference ref;
    const GptConfig config = moa_config(ref.C, ref.NH, ref.E, ref.K);
    const int N = ref.B * ref.T, C = ref.C;
    struct Case {
        bool training;
        MoeAuxWeights weights;
    };
    const std::vector<Case> cases = {{true, {0, 0, 0, 0}},
                                     {true, {1, 0, 0, 0}},
                                     {true, {0, 1, 0, 0}},
                                     {true, {0, 0, 1, 0}},
                                     {true, {0, 0, 0, 1}},
                                     {false, {0, 0, 0, 0}},
                                     {false, {0.5f, 0.5f, 0.5f, 0.5f}}};
    for (const Case& cs : cases) {
        const MoeAuxWeights& weights = cs.weights;
        MoaAttention layer(config, ref.B, ref.T);
        layer.set_draws(ref.eps.data());
        auto params = ref.params;
        std::vector<float> x = ref.x;
        const MoaTensors p = bind(params);
        std::vector<float> y(size_t(N) * C);
        layer.forward(y.data(), x.data(), p, ref.B, ref.T, cs.training, ref.bias_b1.data(), 0);
        layer.freeze_routing(true);
        const bool with_output =
            weights.load + weights.importance + weights.z + weights.penalty == 0 || !cs.training;
        auto loss = [&]() {
            layer.forward(y.data(), x.data(), p, ref.B, ref.T, cs.training, ref.bias_b1.data(), 0);
            double l = layer.aux_loss(weights);
            if (with_output) {
                for (int i = 0; i < N * C; ++i) l += double(y[i]) * ref.R[i];
            }
            return l;
        };
        Tensors grads = zeros_like(params);
        const MoaTensors g = bind(grads);
        std::vector<float> dx(size_t(N) * C, 0.0f);
        const std::vector<float> dy = with_output ? ref.R : std::vector<float>(size_t(N) * C, 0.0f);
        loss();
        layer.backward(dx.data(), g, dy.data(), x.data(), p, weights, 1.0f);
        testing::GradCheckOptions options;
        options.max_coords = 40;
        const std::string what =
            fmt::format("{} aux ({},{},{},{})", cs.training ? "train" : "eval", weights.load,
                        weights.importance, weights.z, weights.penalty);
        EXPECT_TRUE(
            testing::gradient_matches(what + " x", x.data(), x.size(), dx.data(), loss, options));
        for (auto& [n, v] : params) {
            if (max_abs(grads[n]) == 0.0) {
                // Only the auxiliary losses alone, or evaluation's noise map, miss a tensor.
                EXPECT_TRUE(!with_output || (n == "noise.weight" && !cs.training)) << what << n;
                continue;
            }
            EXPECT_TRUE(testing::gradient_matches(what + " " + n, v.data(), v.size(),
                                                  grads[n].data(), loss, options));
        }
    }
}

// Outputs of tokens before t0 see neither x nor dy of later tokens, whatever the routing.
TEST(MoaAttention, IsCausalForwardAndBackward) {
    const int B = 2, T = 7, C = 16, NH = 2, E = 3, K = 2, N = B * T, t0 = 4;
    const GptConfig config = moa_config(C, NH, E, K);
    Tensors params = random_params(C, E, 3);
    const MoaTensors p = bind(params);
    for (const bool training : {true, false}) {
        SCOPED_TRACE(training ? "train" : "eval");
        MoaAttention layer(config, B, T);
        const std::vector<float> x = random_vector(size_t(N) * C, 1);
        std::vector<float> y(size_t(N) * C), y2(size_t(N) * C);
        layer.forward(y.data(), x.data(), p, B, T, training, nullptr, 5);
        std::vector<float> x2 = x;
        for (int b = 0; b < B; ++b) {
            for (int t = t0; t < T; ++t) {
                for (int c = 0; c < C; ++c) x2[(size_t(b) * T + t) * C + c] += 3.0f * (c % 3 - 1);
            }
        }
        layer.forward(y2.data(), x2.data(), p, B, T, training, nullptr, 5);
        // The later tokens' new routing moves earlier rows inside the per-expert products,
        // whose rounding depends on a row's place in the block: equal up to rounding only.
        const double scale = max_abs(y);
        for (int b = 0; b < B; ++b) {
            for (int t = 0; t < T; ++t) {
                double diff = 0.0;
                for (int c = 0; c < C; ++c) {
                    const size_t i = (size_t(b) * T + t) * C + c;
                    diff = std::max(diff, std::abs(double(y[i]) - y2[i]));
                }
                if (t < t0) {
                    EXPECT_LE(diff, 1e-6 * scale) << "token " << t << " of sequence " << b;
                } else {
                    EXPECT_GT(diff, 1e-3 * scale) << "token " << t << " of sequence " << b;
                }
            }
        }
        // With the routing pinned by the bias (every token: expert 0, then 1) the rows keep
        // their places and the earlier outputs keep their bits.
        const std::vector<float> pin = {1000.0f, 500.0f, 0.0f};
        layer.forward(y.data(), x.data(), p, B, T, training, pin.data(), 5);
        layer.forward(y2.data(), x2.data(), p, B, T, training, pin.data(), 5);
        for (int b = 0; b < B; ++b) {
            const size_t row = size_t(b) * T * C;
            EXPECT_EQ(0, std::memcmp(y.data() + row, y2.data() + row, t0 * C * sizeof(float)))
                << "sequence " << b << " saw the future";
        }
        // dy only on tokens before t0: no gradient reaches the later tokens' x.
        std::vector<float> dy = random_vector(size_t(N) * C, 2);
        for (int b = 0; b < B; ++b) {
            for (int i = t0 * C; i < T * C; ++i) dy[size_t(b) * T * C + i] = 0.0f;
        }
        Tensors grads = zeros_like(params);
        std::vector<float> dx(size_t(N) * C, 0.0f);
        layer.backward(dx.data(), bind(grads), dy.data(), x2.data(), p, MoeAuxWeights{}, 1.0f);
        for (int b = 0; b < B; ++b) {
            for (int t = 0; t < T; ++t) {
                double norm = 0.0;
                for (int c = 0; c < C; ++c) norm += std::abs(dx[(size_t(b) * T + t) * C + c]);
                if (t < t0) {
                    EXPECT_GT(norm, 0.0) << "token " << t;
                } else {
                    EXPECT_EQ(norm, 0.0) << "token " << t << " got a gradient from the past";
                }
            }
        }
    }
}

// With one expert and k = 1 the gate weight is exactly 1 and MoA is multi-head attention:
// q_experts[0] and c_kv are the rows of c_attn, o_experts[0] is c_proj.
void expect_one_expert_is_dense(int C, int NH) {
    const int B = 2, T = 9, N = B * T;
    const size_t Cs = C;
    const GptConfig config = moa_config(C, NH, 1, 1);
    const float wstd = 1.0f / std::sqrt(static_cast<float>(C));
    auto draw = [&](size_t n, uint64_t seed, float std) {
        std::vector<float> v = random_vector(n, seed);
        for (float& f : v) f *= std;
        return v;
    };
    std::vector<float> attn_w = draw(3 * Cs * Cs, 10, 2 * wstd), attn_b = draw(3 * Cs, 11, 0.1f);
    std::vector<float> proj_w = draw(Cs * Cs, 12, wstd), proj_b = draw(Cs, 13, 0.1f);
    std::vector<float> router_w = draw(Cs, 14, 0.5f), noise_w = draw(Cs, 15, 0.5f);
    const std::vector<float> x = random_vector(size_t(N) * C, 16);
    const std::vector<float> dy = random_vector(size_t(N) * C, 17);

    // Dense: c_attn, attention, c_proj, and their backward.
    std::vector<float> qkv(size_t(N) * 3 * C), atty(size_t(N) * C), att(size_t(B) * NH * T * T);
    std::vector<float> y_dense(size_t(N) * C);
    nn::matmul_forward(qkv.data(), x.data(), attn_w.data(), attn_b.data(), N, C, 3 * C);
    nn::attention_forward(atty.data(), att.data(), qkv.data(), B, T, C, NH);
    nn::matmul_forward(y_dense.data(), atty.data(), proj_w.data(), proj_b.data(), N, C, C);
    std::vector<float> datty(size_t(N) * C, 0.0f), dqkv(size_t(N) * 3 * C, 0.0f);
    std::vector<float> scratch(att.size()), dx_dense(size_t(N) * C, 0.0f);
    std::vector<float> dattn_w(attn_w.size(), 0.0f), dattn_b(attn_b.size(), 0.0f);
    std::vector<float> dproj_w(proj_w.size(), 0.0f), dproj_b(proj_b.size(), 0.0f);
    nn::matmul_backward(datty.data(), dproj_w.data(), dproj_b.data(), dy.data(), atty.data(),
                        proj_w.data(), N, C, C);
    nn::attention_backward(dqkv.data(), scratch.data(), datty.data(), qkv.data(), att.data(), B, T,
                           C, NH);
    nn::matmul_backward(dx_dense.data(), dattn_w.data(), dattn_b.data(), dqkv.data(), x.data(),
                        attn_w.data(), N, C, 3 * C);

    // MoA on the same weights, in training mode (the noise cannot move a lone gate weight).
    MoaTensors p{attn_w.data() + Cs * Cs, attn_b.data() + Cs, router_w.data(), noise_w.data(),
                 attn_w.data(),           attn_b.data(),      proj_w.data(),   proj_b.data()};
    std::vector<float> gattn_w(attn_w.size(), 0.0f), gattn_b(attn_b.size(), 0.0f);
    std::vector<float> gproj_w(proj_w.size(), 0.0f), gproj_b(proj_b.size(), 0.0f);
    std::vector<float> grouter(Cs, 0.0f), gnoise(Cs, 0.0f);
    MoaTensors g{gattn_w.data() + Cs * Cs, gattn_b.data() + Cs, grouter.data(), gnoise.data(),
                 gattn_w.data(),           gattn_b.data(),      gproj_w.data(), gproj_b.data()};
    MoaAttention layer(config, B, T);
    std::vector<float> y(size_t(N) * C), dx(size_t(N) * C, 0.0f);
    layer.forward(y.data(), x.data(), p, B, T, true, nullptr, 9);
    layer.backward(dx.data(), g, dy.data(), x.data(), p, MoeAuxWeights{}, 1.0f);

    EXPECT_LT(max_abs_diff(y_dense, y.data()), 1e-6 * max_abs(y_dense)) << "y";
    auto expect_close = [](const char* what, const std::vector<float>& want,
                           const std::vector<float>& got) {
        EXPECT_LT(max_abs_diff(want, got.data()), 1e-6 * max_abs(want)) << what;
    };
    expect_close("dx", dx_dense, dx);
    expect_close("d c_attn.weight", dattn_w, gattn_w);
    // The key third of c_attn.bias has a true gradient of 0 (softmax ignores a shift of a
    // whole score row): both sides are rounding noise there.
    for (size_t i = Cs; i < 2 * Cs; ++i) gattn_b[i] = dattn_b[i] = 0.0f;
    expect_close("d c_attn.bias", dattn_b, gattn_b);
    expect_close("d c_proj.weight", dproj_w, gproj_w);
    expect_close("d c_proj.bias", dproj_b, gproj_b);
    EXPECT_EQ(max_abs(grouter), 0.0);
    EXPECT_EQ(max_abs(gnoise), 0.0);
}

TEST(MoaAttention, OneExpertIsDenseAttention) {
    {
        SCOPED_TRACE("head size 8");
        expect_one_expert_is_dense(16, 2);
    }
    {
        SCOPED_TRACE("head size 4");
        expect_one_expert_is_dense(12, 3);
    }
    {
        SCOPED_TRACE("head size 64");
        expect_one_expert_is_dense(128, 2);
    }
}

// OpenBLAS's own sgemm is not thread-count independent once it runs threaded (it splits the
// products differently), but it stays on one thread while M·N·K ≤ 2^18. These sizes keep
// every product at or under that and every loop of MoA's own above the thresholds that make
// it run threaded, so the test pins down MoA's code: routing, gathers, the attention units,
// the dK/dV accumulation, the combine and the scatter.
TEST(MoaAttention, ThreadCountDoesNotChangeBits) {
    const int B = 8, T = 64, C = 16, NH = 2, E = 4, K = 2, N = B * T;
    ASSERT_LE(size_t(N) * 2 * C * C, size_t{1} << 18);  // c_kv, the largest product
    ASSERT_GE(size_t(K) * N * (T + 1) * C, nn::kParallelMinFlops);
    ASSERT_TRUE(nn::worth_parallel(size_t(N) * K * C));
    const GptConfig config = moa_config(C, NH, E, K);
    Tensors params = random_params(C, E, 4);
    const MoaTensors p = bind(params);
    const std::vector<float> x = random_vector(size_t(N) * C, 21);
    const std::vector<float> dy = random_vector(size_t(N) * C, 22);
    const std::vector<float> bias = {0.1f, -0.1f, 0.0f, 0.2f};
    struct Result {
        std::vector<float> y, dx;
        Tensors grads;
        double aux;
    };
    auto run = [&](int threads) {
        ScopedThreads scope(threads);
        MoaAttention layer(config, B, T);
        Result r;
        r.y.resize(size_t(N) * C);
        r.dx.assign(size_t(N) * C, 0.0f);
        r.grads = zeros_like(params);
        const MoeAuxWeights w{0.1f, 0.1f, 0.01f, 0.1f};
        layer.forward(r.y.data(), x.data(), p, B, T, true, bias.data(), 77);
        r.aux = layer.aux_loss(w);
        layer.backward(r.dx.data(), bind(r.grads), dy.data(), x.data(), p, w, 0.5f);
        return r;
    };
    const Result one = run(1), two = run(2);
    EXPECT_TRUE(same_bits(one.y, two.y));
    EXPECT_TRUE(same_bits(one.dx, two.dx));
    EXPECT_EQ(one.aux, two.aux);
    for (const auto& [n, v] : one.grads) {
        EXPECT_TRUE(same_bits(v, two.grads.at(n))) << n;
        EXPECT_GT(max_abs(v), 0.0) << n;
    }
}

TEST(MoaAttention, RejectsBatchesBeyondItsBuffers) {
    const GptConfig config = moa_config(8, 2, 4, 2);
    Tensors params = random_params(8, 4, 5);
    const MoaTensors p = bind(params);
    MoaAttention layer(config, 2, 4);
    std::vector<float> x = random_vector(3 * 5 * 8, 1), y(3 * 5 * 8);
    EXPECT_THROW(layer.forward(y.data(), x.data(), p, 3, 4, true, nullptr, 0), Error);
    EXPECT_THROW(layer.forward(y.data(), x.data(), p, 2, 5, true, nullptr, 0), Error);
    layer.forward(y.data(), x.data(), p, 2, 4, true, nullptr, 0);
    layer.freeze_routing(true);
    EXPECT_THROW(layer.forward(y.data(), x.data(), p, 2, 3, true, nullptr, 0), Error);
}

}  // namespace
}  // namespace greenmoe

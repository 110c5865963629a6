// Tests of the nn ops: forward against naive double-precision references, backward
// against finite differences, accumulation, aliasing, causality and thread-count
// determinism.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <omp.h>
#include "test_support.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "grad_check.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/nn/attention.h"
#include "greenmoe/nn/cross_entropy.h"
#include "greenmoe/nn/encoder.h"
#include "greenmoe/nn/gelu.h"
#include "greenmoe/nn/layernorm.h"
#include "greenmoe/nn/matmul.h"
#include "greenmoe/nn/parallel.h"
#include "greenmoe/nn/residual.h"

namespace greenmoe::nn {
namespace {

using testing::same_bits;
using testing::ScopedThreads;

using greenmoe::testing::GradCheckOptions;
using greenmoe::testing::gradient_matches;

std::vector<float> random_normal(size_t n, uint64_t seed, float scale = 1.0f) {
    std::vector<float> v(n);
    const uint64_t key = rng_key(seed, 0x6e6e);
    for (size_t i = 0; i < n; ++i) v[i] = scale * rng_normal(key, i);
    return v;
}

std::vector<int> random_ints(size_t n, uint64_t seed, int lo, int hi) {
    std::vector<int> v(n);
    const uint64_t key = rng_key(seed, 0x696e74);
    for (size_t i = 0; i < n; ++i) {
        v[i] = lo + static_cast<int>(rng_u64(key, i) % static_cast<uint64_t>(hi - lo));
    }
    return v;
}

// Σ a·b in double: the scalar loss L = Σ out·R whose gradient w.r.t. out is R.
double weighted_sum(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0.0;
    for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
}

// Every got[i] within tol·(1 + |want[i]|) of want[i]; reports the worst element.
::testing::AssertionResult all_near(const std::vector<float>& got, const std::vector<double>& want,
                                    double tol) {
    if (got.size() != want.size()) {
        return ::testing::AssertionFailure()
               << "size " << got.size() << " != expected " << want.size();
    }
    size_t worst = 0;
    double worst_excess = -1.0;
    for (size_t i = 0; i < got.size(); ++i) {
        double excess = std::abs(got[i] - want[i]) / (tol * (1.0 + std::abs(want[i])));
        if (std::isnan(excess)) excess = std::numeric_limits<double>::infinity();
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (worst_excess <= 1.0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "element " << worst << " is " << got[worst] << ", expected " << want[worst]
           << " (tolerance " << tol << "·(1+|expected|))";
}

::testing::AssertionResult all_near(const std::vector<float>& got, const std::vector<float>& want,
                                    double tol) {
    return all_near(got, std::vector<double>(want.begin(), want.end()), tol);
}

// Equal as numbers (so 0 == -0), NaN never equal.
bool same_values(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!(a[i] == b[i])) return false;
    }
    return true;
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---------------------------------------------------------------------------------------
// the finite-difference checker itself

TEST(NnOpsGradCheck, AcceptsTheTrueGradientAndPinpointsAWrongOne) {
    // L = Σ c_i·x_i³ in double: smooth, with gradients spread over two orders of magnitude.
    auto x = random_normal(50, 1);
    const auto c = random_normal(50, 2);
    auto loss = [&] {
        double s = 0.0;
        for (size_t i = 0; i < x.size(); ++i) s += static_cast<double>(c[i]) * x[i] * x[i] * x[i];
        return s;
    };
    std::vector<float> grad(x.size());
    for (size_t i = 0; i < x.size(); ++i) grad[i] = 3.0f * c[i] * x[i] * x[i];
    const auto before = x;
    const auto good = greenmoe::testing::check_gradient(x.data(), x.size(), grad.data(), loss);
    EXPECT_TRUE(good.ok()) << good.describe("x");
    EXPECT_EQ(good.checked, x.size());
    EXPECT_TRUE(same_bits(x, before));  // restored exactly

    auto wrong = grad;
    size_t largest = 0;
    for (size_t i = 0; i < grad.size(); ++i) {
        if (std::abs(grad[i]) > std::abs(grad[largest])) largest = i;
    }
    wrong[largest] *= 1.01f;  // 1% off: ten times the tolerance
    const auto bad = greenmoe::testing::check_gradient(x.data(), x.size(), wrong.data(), loss);
    EXPECT_FALSE(bad.ok());
    EXPECT_EQ(bad.failures, 1u);
    EXPECT_EQ(bad.worst_index, largest);
    EXPECT_NE(bad.describe("x").find(fmt::format("[{}]", largest)), std::string::npos);

    GradCheckOptions subset;
    subset.max_coords = 7;
    const auto part =
        greenmoe::testing::check_gradient(x.data(), x.size(), grad.data(), loss, subset);
    EXPECT_TRUE(part.ok());
    EXPECT_EQ(part.checked, 7u);
}

// ---------------------------------------------------------------------------------------
// matmul

std::vector<double> matmul_reference(const std::vector<float>& inp, const std::vector<float>& w,
                                     const float* bias, int N, int C, int OC) {
    std::vector<double> out(static_cast<size_t>(N) * OC);
    for (int n = 0; n < N; ++n) {
        for (int o = 0; o < OC; ++o) {
            double s = bias != nullptr ? bias[o] : 0.0;
            for (int c = 0; c < C; ++c) {
                s += static_cast<double>(inp[static_cast<size_t>(n) * C + c]) *
                     w[static_cast<size_t>(o) * C + c];
            }
            out[static_cast<size_t>(n) * OC + o] = s;
        }
    }
    return out;
}

TEST(NnOpsMatmul, ForwardMatchesReference) {
    const int N = 37, C = 29, OC = 23;
    const auto inp = random_normal(static_cast<size_t>(N) * C, 1);
    const auto w = random_normal(static_cast<size_t>(OC) * C, 2);
    const auto bias = random_normal(OC, 3);
    std::vector<float> out(static_cast<size_t>(N) * OC, kNaN);
    matmul_forward(out.data(), inp.data(), w.data(), bias.data(), N, C, OC);
    EXPECT_TRUE(all_near(out, matmul_reference(inp, w, bias.data(), N, C, OC), 1e-5));
    std::fill(out.begin(), out.end(), kNaN);
    matmul_forward(out.data(), inp.data(), w.data(), nullptr, N, C, OC);
    EXPECT_TRUE(all_near(out, matmul_reference(inp, w, nullptr, N, C, OC), 1e-5));
}

struct MatmulCase {
    int N = 10, C = 8, OC = 6;
    std::vector<float> inp = random_normal(static_cast<size_t>(N) * C, 11);
    std::vector<float> w = random_normal(static_cast<size_t>(OC) * C, 12, 0.5f);
    std::vector<float> bias = random_normal(OC, 13);
    std::vector<float> r = random_normal(static_cast<size_t>(N) * OC, 14);
    std::vector<float> out = std::vector<float>(static_cast<size_t>(N) * OC);

    double loss() {
        matmul_forward(out.data(), inp.data(), w.data(), bias.data(), N, C, OC);
        return weighted_sum(out, r);
    }
    void backward(std::vector<float>& dinp, std::vector<float>& dw, std::vector<float>& db) {
        matmul_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), N, C,
                        OC);
    }
};

TEST(NnOpsMatmul, BackwardMatchesFiniteDifferences) {
    MatmulCase m;
    std::vector<float> dinp(m.inp.size()), dw(m.w.size()), db(m.bias.size());
    m.backward(dinp, dw, db);
    auto loss = [&] { return m.loss(); };
    EXPECT_TRUE(gradient_matches("dinp", m.inp.data(), m.inp.size(), dinp.data(), loss));
    EXPECT_TRUE(gradient_matches("dweight", m.w.data(), m.w.size(), dw.data(), loss));
    EXPECT_TRUE(gradient_matches("dbias", m.bias.data(), m.bias.size(), db.data(), loss));
}

TEST(NnOpsMatmul, BackwardAccumulatesAndSkipsNullGradients) {
    MatmulCase m;
    std::vector<float> dinp(m.inp.size()), dw(m.w.size()), db(m.bias.size());
    m.backward(dinp, dw, db);
    const auto g_inp = random_normal(dinp.size(), 21);
    const auto g_w = random_normal(dw.size(), 22);
    const auto g_b = random_normal(db.size(), 23);
    auto acc_inp = g_inp, acc_w = g_w, acc_b = g_b;
    m.backward(acc_inp, acc_w, acc_b);
    std::vector<float> want_inp(dinp.size()), want_w(dw.size()), want_b(db.size());
    for (size_t i = 0; i < dinp.size(); ++i) want_inp[i] = g_inp[i] + dinp[i];
    for (size_t i = 0; i < dw.size(); ++i) want_w[i] = g_w[i] + dw[i];
    for (size_t i = 0; i < db.size(); ++i) want_b[i] = g_b[i] + db[i];
    EXPECT_TRUE(all_near(acc_inp, want_inp, 1e-6));
    EXPECT_TRUE(all_near(acc_w, want_w, 1e-6));
    EXPECT_TRUE(all_near(acc_b, want_b, 1e-6));

    // Only dweight requested: it alone changes.
    std::vector<float> only_w(dw.size(), 0.0f);
    matmul_backward(nullptr, only_w.data(), nullptr, m.r.data(), m.inp.data(), m.w.data(), m.N, m.C,
                    m.OC);
    EXPECT_TRUE(same_bits(only_w, dw));
}

TEST(NnOpsMatmul, BiasGradientIsIndependentOfThreadCount) {
    const int N = 301, C = 4, OC = 200;
    ASSERT_TRUE(worth_parallel(static_cast<size_t>(N) * OC));  // else one thread runs it all
    const auto dout = random_normal(static_cast<size_t>(N) * OC, 31);
    const auto inp = random_normal(static_cast<size_t>(N) * C, 32);
    const auto w = random_normal(static_cast<size_t>(OC) * C, 33);
    std::vector<std::vector<float>> results;
    for (const int threads : {1, 2, 3}) {
        ScopedThreads scoped(threads);
        std::vector<float> db(OC, 0.25f);
        matmul_backward(nullptr, nullptr, db.data(), dout.data(), inp.data(), w.data(), N, C, OC);
        results.push_back(db);
    }
    EXPECT_TRUE(same_bits(results[0], results[1]));
    EXPECT_TRUE(same_bits(results[0], results[2]));
    std::vector<double> want(OC, 0.25);
    for (int n = 0; n < N; ++n) {
        for (int o = 0; o < OC; ++o) want[o] += dout[static_cast<size_t>(n) * OC + o];
    }
    EXPECT_TRUE(all_near(results[0], want, 1e-6));
}

// ---------------------------------------------------------------------------------------
// layernorm

struct LayerNormCase {
    int N = 6, C = 8;
    std::vector<float> inp = random_normal(static_cast<size_t>(N) * C, 41, 2.0f);
    std::vector<float> w = random_normal(C, 42);
    std::vector<float> bias = random_normal(C, 43);
    std::vector<float> r = random_normal(static_cast<size_t>(N) * C, 44);
    std::vector<float> out = std::vector<float>(static_cast<size_t>(N) * C);
    std::vector<float> mean = std::vector<float>(N);
    std::vector<float> rstd = std::vector<float>(N);

    LayerNormCase() = default;
    LayerNormCase(int n, int c) : N(n), C(c) {}

    double loss() {
        layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), bias.data(),
                          N, C);
        return weighted_sum(out, r);
    }
    void backward(std::vector<float>& dinp, std::vector<float>& dw, std::vector<float>& db) {
        loss();
        layernorm_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(),
                           mean.data(), rstd.data(), N, C);
    }
};

TEST(NnOpsLayerNorm, ForwardMatchesReference) {
    LayerNormCase l(13, 45);
    // A large common offset: a one-pass variance would lose most of its digits.
    for (auto& x : l.inp) x += 300.0f;
    l.loss();
    std::vector<double> want(l.out.size()), want_mean(l.N), want_rstd(l.N);
    for (int n = 0; n < l.N; ++n) {
        const float* x = l.inp.data() + static_cast<size_t>(n) * l.C;
        double m = 0.0;
        for (int c = 0; c < l.C; ++c) m += x[c];
        m /= l.C;
        double v = 0.0;
        for (int c = 0; c < l.C; ++c) v += (x[c] - m) * (x[c] - m);
        v /= l.C;
        const double s = 1.0 / std::sqrt(v + 1e-5);
        want_mean[n] = m;
        want_rstd[n] = s;
        for (int c = 0; c < l.C; ++c) {
            want[static_cast<size_t>(n) * l.C + c] = (x[c] - m) * s * l.w[c] + l.bias[c];
        }
    }
    EXPECT_TRUE(all_near(l.out, want, 2e-5));
    EXPECT_TRUE(all_near(l.mean, want_mean, 1e-6));
    EXPECT_TRUE(all_near(l.rstd, want_rstd, 1e-6));
}

TEST(NnOpsLayerNorm, BackwardMatchesFiniteDifferences) {
    LayerNormCase l;
    std::vector<float> dinp(l.inp.size()), dw(l.w.size()), db(l.bias.size());
    l.backward(dinp, dw, db);
    auto loss = [&] { return l.loss(); };
    EXPECT_TRUE(gradient_matches("dinp", l.inp.data(), l.inp.size(), dinp.data(), loss));
    EXPECT_TRUE(gradient_matches("dweight", l.w.data(), l.w.size(), dw.data(), loss));
    EXPECT_TRUE(gradient_matches("dbias", l.bias.data(), l.bias.size(), db.data(), loss));
}

TEST(NnOpsLayerNorm, BackwardAccumulates) {
    LayerNormCase l;
    std::vector<float> dinp(l.inp.size()), dw(l.w.size()), db(l.bias.size());
    l.backward(dinp, dw, db);
    auto acc_inp = random_normal(dinp.size(), 51);
    auto acc_w = random_normal(dw.size(), 52);
    auto acc_b = random_normal(db.size(), 53);
    std::vector<float> want_inp(dinp.size()), want_w(dw.size()), want_b(db.size());
    for (size_t i = 0; i < dinp.size(); ++i) want_inp[i] = acc_inp[i] + dinp[i];
    for (size_t i = 0; i < dw.size(); ++i) want_w[i] = acc_w[i] + dw[i];
    for (size_t i = 0; i < db.size(); ++i) want_b[i] = acc_b[i] + db[i];
    l.backward(acc_inp, acc_w, acc_b);
    EXPECT_TRUE(all_near(acc_inp, want_inp, 1e-6));
    EXPECT_TRUE(all_near(acc_w, want_w, 1e-6));
    EXPECT_TRUE(all_near(acc_b, want_b, 1e-6));
}

TEST(NnOpsLayerNorm, BackwardIsIndependentOfThreadCount) {
    LayerNormCase l(150, 200);
    ASSERT_TRUE(worth_parallel(static_cast<size_t>(l.N) * l.C));
    std::vector<std::vector<float>> results;
    for (const int threads : {1, 2, 3}) {
        ScopedThreads scoped(threads);
        std::vector<float> dinp(l.inp.size()), dw(l.w.size()), db(l.bias.size());
        l.backward(dinp, dw, db);
        results.push_back(dinp);
        results.push_back(dw);
        results.push_back(db);
    }
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_TRUE(same_bits(results[i], results[3 + i])) << "output " << i << ", 2 threads";
        EXPECT_TRUE(same_bits(results[i], results[6 + i])) << "output " << i << ", 3 threads";
    }
}

// ---------------------------------------------------------------------------------------
// gelu

double gelu_reference(double x) {
    return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

TEST(NnOpsGelu, ForwardMatchesReference) {
    auto inp = random_normal(100003, 61, 3.0f);
    for (const float x : {0.0f, -0.0f, 1e-8f, -1e-8f, 20.0f, -20.0f, 100.0f, -100.0f, 1e30f}) {
        inp.push_back(x);
    }
    std::vector<float> out(inp.size(), kNaN);
    gelu_forward(out.data(), inp.data(), inp.size());
    std::vector<double> want(inp.size());
    for (size_t i = 0; i < inp.size(); ++i) want[i] = gelu_reference(inp[i]);
    EXPECT_TRUE(all_near(out, want, 1e-6));
    // In place.
    gelu_forward(inp.data(), inp.data(), inp.size());
    EXPECT_TRUE(same_bits(inp, out));
}

TEST(NnOpsGelu, BackwardMatchesFiniteDifferences) {
    auto inp = random_normal(64, 62, 2.0f);
    const auto r = random_normal(64, 63);
    std::vector<float> out(64);
    auto loss = [&] {
        gelu_forward(out.data(), inp.data(), inp.size());
        return weighted_sum(out, r);
    };
    std::vector<float> dinp(64, 0.0f);
    gelu_backward(dinp.data(), inp.data(), r.data(), inp.size());
    EXPECT_TRUE(gradient_matches("dinp", inp.data(), inp.size(), dinp.data(), loss));

    // Against the derivative of the double reference too, over a wide range.
    auto wide = random_normal(50000, 64, 4.0f);
    std::vector<float> ones(wide.size(), 1.0f), grad(wide.size(), 0.0f);
    gelu_backward(grad.data(), wide.data(), ones.data(), wide.size());
    std::vector<double> want(wide.size());
    for (size_t i = 0; i < wide.size(); ++i) {
        const double x = wide[i];
        const double k = std::sqrt(2.0 / M_PI);
        const double th = std::tanh(k * (x + 0.044715 * x * x * x));
        want[i] = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * k * (1.0 + 3 * 0.044715 * x * x);
    }
    EXPECT_TRUE(all_near(grad, want, 2e-6));
}

TEST(NnOpsGelu, BackwardAccumulatesOrReplacesInPlace) {
    const size_t n = 70001;  // several parallel chunks plus a tail
    const auto inp = random_normal(n, 65, 2.0f);
    const auto dout = random_normal(n, 66);
    std::vector<float> fresh(n, 0.0f);
    gelu_backward(fresh.data(), inp.data(), dout.data(), n);

    const auto start = random_normal(n, 67);
    auto acc = start;
    gelu_backward(acc.data(), inp.data(), dout.data(), n);
    std::vector<float> want(n);
    for (size_t i = 0; i < n; ++i) want[i] = start[i] + fresh[i];
    EXPECT_TRUE(all_near(acc, want, 1e-6));

    // dinp == dout: the buffer is replaced by the input gradient.
    auto in_place = dout;
    gelu_backward(in_place.data(), inp.data(), in_place.data(), n);
    EXPECT_TRUE(same_values(in_place, fresh));
}

// ---------------------------------------------------------------------------------------
// encoder

struct EncoderCase {
    int B = 2, T = 5, C = 8, V = 7, Vp = 8, maxT = 6;
    std::vector<int> tokens = {3, 1, 3, 0, 6, 6, 2, 3, 5, 1};
    std::vector<float> wte = random_normal(static_cast<size_t>(Vp) * C, 71);
    std::vector<float> wpe = random_normal(static_cast<size_t>(maxT) * C, 72);
    std::vector<float> r = random_normal(static_cast<size_t>(B) * T * C, 73);
    std::vector<float> out = std::vector<float>(static_cast<size_t>(B) * T * C);

    double loss() {
        encoder_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
        return weighted_sum(out, r);
    }
};

TEST(NnOpsEncoder, ForwardMatchesReference) {
    EncoderCase e;
    e.loss();
    std::vector<double> want(e.out.size());
    for (int b = 0; b < e.B; ++b) {
        for (int t = 0; t < e.T; ++t) {
            const int tok = e.tokens[static_cast<size_t>(b) * e.T + t];
            for (int c = 0; c < e.C; ++c) {
                want[(static_cast<size_t>(b) * e.T + t) * e.C + c] =
                    static_cast<double>(e.wte[static_cast<size_t>(tok) * e.C + c]) +
                    e.wpe[static_cast<size_t>(t) * e.C + c];
            }
        }
    }
    EXPECT_TRUE(all_near(e.out, want, 1e-7));
}

TEST(NnOpsEncoder, BackwardMatchesFiniteDifferencesAndAccumulates) {
    EncoderCase e;
    std::vector<float> dwte(e.wte.size(), 0.0f), dwpe(e.wpe.size(), 0.0f);
    encoder_backward(dwte.data(), dwpe.data(), e.r.data(), e.tokens.data(), e.B, e.T, e.C);
    auto loss = [&] { return e.loss(); };
    // Covers tokens seen twice, tokens never seen (zero gradient), the padded row and
    // position T (past the sequence).
    EXPECT_TRUE(gradient_matches("dwte", e.wte.data(), e.wte.size(), dwte.data(), loss));
    EXPECT_TRUE(gradient_matches("dwpe", e.wpe.data(), e.wpe.size(), dwpe.data(), loss));

    auto acc_te = random_normal(dwte.size(), 74);
    auto acc_pe = random_normal(dwpe.size(), 75);
    std::vector<float> want_te(dwte.size()), want_pe(dwpe.size());
    for (size_t i = 0; i < dwte.size(); ++i) want_te[i] = acc_te[i] + dwte[i];
    for (size_t i = 0; i < dwpe.size(); ++i) want_pe[i] = acc_pe[i] + dwpe[i];
    encoder_backward(acc_te.data(), acc_pe.data(), e.r.data(), e.tokens.data(), e.B, e.T, e.C);
    EXPECT_TRUE(all_near(acc_te, want_te, 1e-6));
    EXPECT_TRUE(all_near(acc_pe, want_pe, 1e-6));
}

TEST(NnOpsEncoder, BackwardIsBitIdenticalForAnyThreadCount) {
    const int B = 4, T = 64, C = 100, V = 23;  // few distinct tokens: many collisions
    ASSERT_TRUE(worth_parallel(static_cast<size_t>(B) * T * C));
    const auto tokens = random_ints(static_cast<size_t>(B) * T, 76, 0, V);
    const auto dout = random_normal(static_cast<size_t>(B) * T * C, 77);
    const auto start_te = random_normal(static_cast<size_t>(V) * C, 78);
    const auto start_pe = random_normal(static_cast<size_t>(T) * C, 79);
    std::vector<std::vector<float>> te, pe;
    for (const int threads : {1, 2, 3}) {
        ScopedThreads scoped(threads);
        auto dwte = start_te;
        auto dwpe = start_pe;
        encoder_backward(dwte.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C);
        te.push_back(dwte);
        pe.push_back(dwpe);
    }
    EXPECT_TRUE(same_bits(te[0], te[1]));
    EXPECT_TRUE(same_bits(pe[0], pe[1]));
    EXPECT_TRUE(same_bits(te[0], te[2]));
    EXPECT_TRUE(same_bits(pe[0], pe[2]));
    EXPECT_FALSE(same_bits(te[0], start_te));
}

// ---------------------------------------------------------------------------------------
// attention

struct AttentionReference {
    std::vector<double> out, att;
};

AttentionReference attention_reference(const std::vector<float>& qkv, int B, int T, int C, int NH) {
    const int hs = C / NH;
    const double scale = 1.0 / std::sqrt(static_cast<double>(hs));
    AttentionReference ref;
    ref.out.assign(static_cast<size_t>(B) * T * C, 0.0);
    ref.att.assign(static_cast<size_t>(B) * NH * T * T, 0.0);
    auto at = [&](int b, int t, int part, int h, int d) {
        return static_cast<double>(
            qkv[(static_cast<size_t>(b) * T + t) * 3 * C + part * C + h * hs + d]);
    };
    for (int b = 0; b < B; ++b) {
        for (int h = 0; h < NH; ++h) {
            for (int t = 0; t < T; ++t) {
                std::vector<double> s(t + 1);
                double mx = -1e300;
                for (int j = 0; j <= t; ++j) {
                    double dot = 0.0;
                    for (int d = 0; d < hs; ++d) dot += at(b, t, 0, h, d) * at(b, j, 1, h, d);
                    s[j] = dot * scale;
                    mx = std::max(mx, s[j]);
                }
                double sum = 0.0;
                for (int j = 0; j <= t; ++j) sum += s[j] = std::exp(s[j] - mx);
                double* att_row = &ref.att[((static_cast<size_t>(b) * NH + h) * T + t) * T];
                for (int j = 0; j <= t; ++j) att_row[j] = s[j] / sum;
                for (int d = 0; d < hs; ++d) {
                    double o = 0.0;
                    for (int j = 0; j <= t; ++j) o += att_row[j] * at(b, j, 2, h, d);
                    ref.out[(static_cast<size_t>(b) * T + t) * C + h * hs + d] = o;
                }
            }
        }
    }
    return ref;
}

struct AttentionCase {
    int B, T, C, NH;
    std::vector<float> qkv, r, out, att;

    AttentionCase(int b, int t, int c, int nh, uint64_t seed)
        : B(b),
          T(t),
          C(c),
          NH(nh),
          qkv(random_normal(static_cast<size_t>(b) * t * 3 * c, seed)),
          r(random_normal(static_cast<size_t>(b) * t * c, seed + 1)),
          out(static_cast<size_t>(b) * t * c, kNaN),
          att(static_cast<size_t>(b) * nh * t * t, kNaN) {}

    double loss() {
        attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
        return weighted_sum(out, r);
    }
    std::vector<float> backward(std::vector<float> dqkv) {
        loss();
        std::vector<float> scratch(static_cast<size_t>(B) * NH * T * T, kNaN);
        attention_backward(dqkv.data(), scratch.data(), r.data(), qkv.data(), att.data(), B, T, C,
                           NH);
        return dqkv;
    }
};

TEST(NnOpsAttention, ForwardMatchesReference) {
    // Tiny; several row tiles with a partial last one; a head size that is not a multiple
    // of 8 (the packing's scalar remainder).
    for (const auto& [B, T, C, NH] :
         {std::tuple{2, 5, 8, 2}, std::tuple{2, 150, 24, 3}, std::tuple{1, 37, 36, 3}}) {
        AttentionCase a(B, T, C, NH, 81);
        a.loss();
        const auto ref = attention_reference(a.qkv, B, T, C, NH);
        EXPECT_TRUE(all_near(a.out, ref.out, 1e-5)) << "T=" << T;
        // Also checks that the masked upper triangle is written as exact zeros.
        EXPECT_TRUE(all_near(a.att, ref.att, 1e-6)) << "T=" << T;
        for (int t = 0; t < T; ++t) {
            for (int j = t + 1; j < T; ++j) ASSERT_EQ(a.att[static_cast<size_t>(t) * T + j], 0.0f);
        }
    }
}

TEST(NnOpsAttention, BackwardMatchesFiniteDifferences) {
    AttentionCase a(2, 5, 8, 2, 82);
    const auto dqkv = a.backward(std::vector<float>(a.qkv.size(), 0.0f));
    EXPECT_TRUE(gradient_matches("dqkv", a.qkv.data(), a.qkv.size(), dqkv.data(),
                                 [&] { return a.loss(); }));
}

TEST(NnOpsAttention, BackwardMatchesFiniteDifferencesAcrossTiles) {
    // Several row/key tiles with a partial last one, head size 12; a random subset of
    // coordinates.
    AttentionCase a(1, 150, 24, 2, 83);
    const auto dqkv = a.backward(std::vector<float>(a.qkv.size(), 0.0f));
    GradCheckOptions options;
    options.max_coords = 300;
    EXPECT_TRUE(gradient_matches(
        "dqkv", a.qkv.data(), a.qkv.size(), dqkv.data(), [&] { return a.loss(); }, options));
}

TEST(NnOpsAttention, BackwardAccumulates) {
    AttentionCase a(2, 70, 16, 2, 84);
    const auto fresh = a.backward(std::vector<float>(a.qkv.size(), 0.0f));
    const auto start = random_normal(a.qkv.size(), 85);
    const auto acc = a.backward(start);
    std::vector<float> want(start.size());
    for (size_t i = 0; i < start.size(); ++i) want[i] = start[i] + fresh[i];
    EXPECT_TRUE(all_near(acc, want, 1e-6));
}

TEST(NnOpsAttention, FutureTokensDoNotChangeEarlierOutputs) {
    const int B = 2, T = 100, C = 16, NH = 2;
    AttentionCase a(B, T, C, NH, 86);
    a.loss();
    const auto out_before = a.out;
    const auto att_before = a.att;
    const int changed = 40;
    for (int b = 0; b < B; ++b) {
        for (int col = C; col < 3 * C; ++col) {  // k and v of token `changed`
            a.qkv[(static_cast<size_t>(b) * T + changed) * 3 * C + col] += 5.0f;
        }
    }
    a.loss();
    for (int b = 0; b < B; ++b) {
        for (int t = 0; t < T; ++t) {
            bool same = true;
            for (int c = 0; c < C; ++c) {
                const size_t i = (static_cast<size_t>(b) * T + t) * C + c;
                same = same && a.out[i] == out_before[i];
            }
            if (t < changed) {
                EXPECT_TRUE(same) << "b=" << b << " t=" << t;
            } else {
                EXPECT_FALSE(same) << "b=" << b << " t=" << t;
            }
        }
    }
}

TEST(NnOpsAttention, SameResultForAnyThreadCount) {
    const int B = 2, T = 130, C = 48, NH = 3;
    // Above the size where the heads are spread over threads.
    ASSERT_GE(static_cast<size_t>(B) * NH * T * T / 2 * (C / NH), kParallelMinFlops);
    AttentionCase a(B, T, C, NH, 87);
    std::vector<std::vector<float>> outs, grads;
    for (const int threads : {1, 2, 3}) {
        ScopedThreads scoped(threads);
        grads.push_back(a.backward(std::vector<float>(a.qkv.size(), 0.0f)));
        outs.push_back(a.out);
    }
    EXPECT_TRUE(same_bits(outs[0], outs[1]));
    EXPECT_TRUE(same_bits(outs[0], outs[2]));
    EXPECT_TRUE(same_bits(grads[0], grads[1]));
    EXPECT_TRUE(same_bits(grads[0], grads[2]));
}

// ---------------------------------------------------------------------------------------
// cross-entropy

struct CrossEntropyReference {
    std::vector<double> losses, dlogits;
};

CrossEntropyReference cross_entropy_reference(const std::vector<float>& logits,
                                              const std::vector<int>& targets, int N, int V, int Vp,
                                              double dloss) {
    CrossEntropyReference ref;
    ref.losses.assign(N, 0.0);
    ref.dlogits.assign(static_cast<size_t>(N) * Vp, 0.0);
    for (int n = 0; n < N; ++n) {
        if (targets[n] < 0) continue;
        const float* x = logits.data() + static_cast<size_t>(n) * Vp;
        double mx = -1e300;
        for (int v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(x[v]));
        double sum = 0.0;
        for (int v = 0; v < V; ++v) sum += std::exp(x[v] - mx);
        ref.losses[n] = std::log(sum) + mx - x[targets[n]];
        for (int v = 0; v < V; ++v) {
            ref.dlogits[static_cast<size_t>(n) * Vp + v] =
                (std::exp(x[v] - mx) / sum - (v == targets[n] ? 1.0 : 0.0)) * dloss;
        }
    }
    return ref;
}

TEST(NnOpsCrossEntropy, MatchesReferenceAndIgnoresPaddingAndMaskedRows) {
    const int N = 6, V = 7, Vp = 8;
    auto logits = random_normal(static_cast<size_t>(N) * Vp, 91, 3.0f);
    // Padded columns hold huge values: they must not enter the softmax.
    for (int n = 0; n < N; ++n) logits[static_cast<size_t>(n) * Vp + V] = 1e30f;
    const std::vector<int> targets = {3, -1, 0, 6, -100, 6};
    const float dloss = 1.0f / 4;
    std::vector<float> losses(N, kNaN), dlogits(logits.size(), kNaN);
    cross_entropy_forward_backward(losses.data(), dlogits.data(), logits.data(), targets.data(), N,
                                   V, Vp, dloss);
    const auto ref = cross_entropy_reference(logits, targets, N, V, Vp, dloss);
    EXPECT_TRUE(all_near(losses, ref.losses, 1e-6));
    EXPECT_TRUE(all_near(dlogits, ref.dlogits, 1e-6));
    for (int n = 0; n < N; ++n) {
        EXPECT_EQ(dlogits[static_cast<size_t>(n) * Vp + V], 0.0f) << "padded column, row " << n;
        if (targets[n] < 0) {
            EXPECT_EQ(losses[n], 0.0f);
            for (int v = 0; v < Vp; ++v) EXPECT_EQ(dlogits[static_cast<size_t>(n) * Vp + v], 0.0f);
        }
    }

    // In place: the logits buffer becomes its gradient.
    auto in_place = logits;
    std::vector<float> losses2(N, kNaN);
    cross_entropy_forward_backward(losses2.data(), in_place.data(), in_place.data(), targets.data(),
                                   N, V, Vp, dloss);
    EXPECT_TRUE(same_bits(in_place, dlogits));
    EXPECT_TRUE(same_bits(losses2, losses));

    // Losses only.
    std::vector<float> losses3(N, kNaN);
    cross_entropy_forward_backward(losses3.data(), nullptr, logits.data(), targets.data(), N, V, Vp,
                                   dloss);
    EXPECT_TRUE(same_bits(losses3, losses));
}

TEST(NnOpsCrossEntropy, BackwardMatchesFiniteDifferences) {
    const int N = 5, V = 7, Vp = 8;
    auto logits = random_normal(static_cast<size_t>(N) * Vp, 92, 2.0f);
    const std::vector<int> targets = {0, 6, -1, 2, 2};
    const float dloss = 0.7f;
    std::vector<float> losses(N), dlogits(logits.size());
    cross_entropy_forward_backward(losses.data(), dlogits.data(), logits.data(), targets.data(), N,
                                   V, Vp, dloss);
    auto loss = [&] {
        cross_entropy_forward_backward(losses.data(), nullptr, logits.data(), targets.data(), N, V,
                                       Vp, dloss);
        double s = 0.0;
        for (const float l : losses) s += static_cast<double>(l) * dloss;
        return s;
    };
    EXPECT_TRUE(gradient_matches("dlogits", logits.data(), logits.size(), dlogits.data(), loss));
}

TEST(NnOpsCrossEntropy, FullVocabularyIsAccurate) {
    const int N = 3, V = 50257, Vp = 50304;
    auto logits = random_normal(static_cast<size_t>(N) * Vp, 93, 4.0f);
    const std::vector<int> targets = {0, 50256, 12345};
    std::vector<float> losses(N), dlogits(logits.size());
    cross_entropy_forward_backward(losses.data(), dlogits.data(), logits.data(), targets.data(), N,
                                   V, Vp, 1.0f);
    const auto ref = cross_entropy_reference(logits, targets, N, V, Vp, 1.0);
    EXPECT_TRUE(all_near(losses, ref.losses, 1e-6));
    EXPECT_TRUE(all_near(dlogits, ref.dlogits, 1e-6));
}

TEST(NnOpsCrossEntropy, RejectsTargetsOutsideTheVocabulary) {
    const int N = 2, V = 7, Vp = 8;
    const auto logits = random_normal(static_cast<size_t>(N) * Vp, 94);
    const std::vector<int> targets = {1, 7};
    std::vector<float> losses(N);
    try {
        cross_entropy_forward_backward(losses.data(), nullptr, logits.data(), targets.data(), N, V,
                                       Vp, 1.0f);
        FAIL() << "expected greenmoe::Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("targets[1] = 7"), std::string::npos) << e.what();
    }
}

// ---------------------------------------------------------------------------------------
// residual

TEST(NnOpsResidual, AddsOutOfPlaceAndInPlace) {
    const size_t n = 100003;  // several parallel chunks and a tail
    const auto a = random_normal(n, 101);
    const auto b = random_normal(n, 102);
    std::vector<float> out(n, kNaN);
    residual_forward(out.data(), a.data(), b.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], a[i] + b[i]) << i;
    auto aliased = a;
    residual_forward(aliased.data(), aliased.data(), b.data(), n);
    EXPECT_TRUE(same_bits(aliased, out));
    auto dst = a;
    add_inplace(dst.data(), b.data(), n);
    EXPECT_TRUE(same_bits(dst, out));
}

}  // namespace
}  // namespace greenmoe::nn

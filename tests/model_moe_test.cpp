// MoE layers against the independent PyTorch reference (tests/fixtures/moe), finite
// differences with routing held fixed, capacity on hand-built routings, and E = 1
// reducing to the dense model exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "grad_check.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/moe_mlp.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::max_abs;
using testing::max_abs_diff;

std::filesystem::path fixture(const std::string& variant) {
    return std::filesystem::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/moe" /
           (variant + ".safetensors");
}

// Parameter names of each variant as the fixture stores them (without "param/").
std::vector<std::string> param_names(const std::string& variant) {
    if (variant == "condmlp") {
        return {"c_fc.weight", "c_proj.weight", "b_fc", "b_proj", "guesser.weight", "guesser.bias"};
    }
    std::vector<std::string> names = {"router.weight"};
    if (variant == "olnn") names.push_back("noise.weight");
    for (const char* n : {"experts.c_fc.weight", "experts.c_fc.bias", "experts.c_proj.weight",
                          "experts.c_proj.bias"}) {
        names.push_back(n);
    }
    return names;
}

// Points a MoeTensors at named buffers.
MoeTensors bind_tensors(std::map<std::string, std::vector<float>>& t, const std::string& variant) {
    auto at = [&](const char* name) { return t.count(name) ? t[name].data() : nullptr; };
    MoeTensors m;
    if (variant == "condmlp") {
        m.fc_w = at("c_fc.weight");
        m.proj_w = at("c_proj.weight");
        m.fc_b = at("b_fc");
        m.proj_b = at("b_proj");
        m.guess_w = at("guesser.weight");
        m.guess_b = at("guesser.bias");
    } else {
        m.router_w = at("router.weight");
        m.noise_w = at("noise.weight");
        m.fc_w = at("experts.c_fc.weight");
        m.fc_b = at("experts.c_fc.bias");
        m.proj_w = at("experts.c_proj.weight");
        m.proj_b = at("experts.c_proj.bias");
    }
    return m;
}

GptConfig layer_config(const std::string& variant, float cf_train, float cf_eval) {
    GptConfig c;
    c.n_layer = 1;
    c.n_head = 1;
    c.n_embd = 8;
    c.block_size = 12;
    c.vocab_size = 16;
    c.mlp = variant;
    c.n_experts = 4;
    c.top_k = 2;
    c.expert_hidden = 16;
    c.capacity_factor = cf_train;
    c.eval_capacity_factor = cf_eval;
    c.finalize();
    return c;
}

struct Reference {
    SafetensorsFile file;
    std::string variant;
    int N, C, E, K;
    std::vector<float> x, R, eps, u_keep, u_path, bias_b1;
    std::map<std::string, std::vector<float>> params;

    explicit Reference(const std::string& v) : file(SafetensorsFile::open(fixture(v))), variant(v) {
        N = std::stoi(file.metadata().at("N"));
        C = std::stoi(file.metadata().at("C"));
        E = std::stoi(file.metadata().at("E"));
        K = variant == "olnn" ? std::stoi(file.metadata().at("k")) : (variant == "gshard" ? 2 : 1);
        x = file.read_f32("x");
        R = file.read_f32("R");
        eps = file.read_f32("eps");
        u_keep = file.read_f32("u_keep");
        u_path = file.read_f32("u_path");
        bias_b1 = file.read_f32("bias_b1");
        for (const auto& n : param_names(variant)) params[n] = file.read_f32("param/" + n);
    }
    std::vector<int> ints(const std::string& name) const {
        const TensorInfo& t = file.get(name);
        std::vector<int> out(static_cast<size_t>(t.numel()));
        std::memcpy(out.data(), file.data(t), t.nbytes);
        return out;
    }
    double scalar(const std::string& name) const { return file.read_f32(name)[0]; }
};

class MoeReference : public ::testing::TestWithParam<std::string> {};

TEST_P(MoeReference, ForwardRoutingAuxLossesAndGradientsMatchPyTorch) {
    Reference ref(GetParam());
    const GptConfig config = layer_config(ref.variant, 1.0f, 2.0f);
    const int N = ref.N, C = ref.C, K = ref.K;
    for (const std::string mode : {"train", "eval"}) {
        for (const std::string b : {"b0", "b1"}) {
            const std::string tag = mode + "_" + b;
            SCOPED_TRACE(ref.variant + " " + tag);
            MoeMlp layer(config, N);
            layer.set_draws(ref.eps.data(), ref.u_keep.data(), ref.u_path.data());
            auto params = ref.params;
            const MoeTensors p = bind_tensors(params, ref.variant);
            std::vector<float> y(size_t(N) * C);
            const bool training = mode == "train";
            layer.forward(y.data(), ref.x.data(), p, N, training,
                          b == "b1" ? ref.bias_b1.data() : nullptr, 0);

            const auto y_ref = ref.file.read_f32(tag + "/y");
            EXPECT_LT(max_abs_diff(y_ref, y.data()), 1e-5) << "y";
            const auto choice = ref.ints(tag + "/choice");
            const auto admitted = ref.ints(tag + "/admitted");
            ASSERT_EQ(layer.choices_per_token(), K);
            for (int i = 0; i < N * K; ++i) {
                EXPECT_EQ(layer.choice()[i], choice[i]) << "choice " << i;
                EXPECT_EQ(layer.admitted()[i], admitted[i]) << "admitted " << i;
            }
            const auto counts = ref.ints(tag + "/counts");
            for (int e = 0; e < ref.E; ++e) EXPECT_EQ(layer.stats().counts[e], counts[e]);
            EXPECT_NEAR(layer.stats().aux_load, ref.scalar(tag + "/aux_load"), 1e-5);
            EXPECT_NEAR(layer.stats().aux_importance, ref.scalar(tag + "/aux_importance"), 1e-5);
            EXPECT_NEAR(layer.stats().aux_z, ref.scalar(tag + "/aux_z"), 1e-5);
            EXPECT_NEAR(layer.stats().aux_penalty, ref.scalar(tag + "/aux_penalty"), 1e-5);
            if (!training) continue;

            // The total gradient, then each auxiliary loss alone.
            const std::vector<std::pair<std::string, MoeAuxWeights>> parts = {
                {"grad_total", {1, 1, 1, 1}},
                {"grad_load", {1, 0, 0, 0}},
                {"grad_importance", {0, 1, 0, 0}},
                {"grad_z", {0, 0, 1, 0}},
                {"grad_penalty", {0, 0, 0, 1}}};
            for (const auto& [part, weights] : parts) {
                SCOPED_TRACE(part);
                std::map<std::string, std::vector<float>> grads;
                for (const auto& [n, v] : params) grads[n].assign(v.size(), 0.0f);
                const MoeTensors g = bind_tensors(grads, ref.variant);
                std::vector<float> dx(size_t(N) * C, 0.0f);
                std::vector<float> dy =
                    part == "grad_total" ? ref.R : std::vector<float>(N * C, 0.0f);
                layer.backward(dx.data(), g, dy.data(), ref.x.data(), p, weights, 1.0f);
                auto expect_close = [&](const std::string& name, const std::vector<float>& got) {
                    const std::string key = tag + "/" + part + "/" + name;
                    if (!ref.file.find(key)) {  // stored only where not identically zero
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

INSTANTIATE_TEST_SUITE_P(Variants, MoeReference,
                         ::testing::Values("olnn", "switch", "gshard", "condmlp"));

// Central differences of Σ y·R + each auxiliary loss, with the routing held fixed.
class MoeFiniteDifferences : public ::testing::TestWithParam<std::string> {};

TEST_P(MoeFiniteDifferences, EveryParameterAndAuxiliaryLoss) {
    Reference ref(GetParam());
    const GptConfig config = layer_config(ref.variant, 1.0f, 2.0f);
    const int N = ref.N, C = ref.C;
    for (const MoeAuxWeights weights :
         {MoeAuxWeights{0, 0, 0, 0}, MoeAuxWeights{1, 0, 0, 0}, MoeAuxWeights{0, 1, 0, 0},
          MoeAuxWeights{0, 0, 1, 0}, MoeAuxWeights{0, 0, 0, 1}}) {
        MoeMlp layer(config, N);
        layer.set_draws(ref.eps.data(), ref.u_keep.data(), ref.u_path.data());
        auto params = ref.params;
        std::vector<float> x = ref.x;
        const MoeTensors p = bind_tensors(params, ref.variant);
        std::vector<float> y(size_t(N) * C);
        layer.forward(y.data(), x.data(), p, N, true, ref.bias_b1.data(), 0);
        layer.freeze_routing(true);
        const bool with_output =
            weights.load + weights.importance + weights.z + weights.penalty == 0;
        auto loss = [&]() {
            layer.forward(y.data(), x.data(), p, N, true, ref.bias_b1.data(), 0);
            double l = layer.aux_loss(weights);
            if (with_output) {
                for (int i = 0; i < N * C; ++i) l += double(y[i]) * ref.R[i];
            }
            return l;
        };
        std::map<std::string, std::vector<float>> grads;
        for (const auto& [n, v] : params) grads[n].assign(v.size(), 0.0f);
        const MoeTensors g = bind_tensors(grads, ref.variant);
        std::vector<float> dx(size_t(N) * C, 0.0f);
        std::vector<float> dy = with_output ? ref.R : std::vector<float>(N * C, 0.0f);
        loss();
        layer.backward(dx.data(), g, dy.data(), x.data(), p, weights, 1.0f);
        testing::GradCheckOptions options;
        options.max_coords = 40;
        const std::string what = fmt::format("{} aux ({},{},{},{})", ref.variant, weights.load,
                                             weights.importance, weights.z, weights.penalty);
        EXPECT_TRUE(
            testing::gradient_matches(what + " x", x.data(), x.size(), dx.data(), loss, options));
        for (auto& [n, v] : params) {
            if (max_abs(grads[n]) == 0.0 && !with_output) continue;  // aux never reaches it
            EXPECT_TRUE(testing::gradient_matches(what + " " + n, v.data(), v.size(),
                                                  grads[n].data(), loss, options));
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Variants, MoeFiniteDifferences,
                         ::testing::Values("olnn", "switch", "gshard", "condmlp"));

// Random weights for a layer of the given variant.
std::map<std::string, std::vector<float>> random_params(const GptConfig& c, uint64_t seed) {
    std::map<std::string, std::vector<float>> t;
    const size_t E = c.n_experts, C = c.n_embd, H = c.hidden();
    auto fill = [&](const std::string& name, size_t n, float std) {
        t[name].resize(n);
        for (size_t i = 0; i < n; ++i) t[name][i] = std * rng_normal(rng_key(seed, t.size()), i);
    };
    fill("router.weight", E * C, 0.5f);
    fill("experts.c_fc.weight", E * H * C, 0.5f);
    fill("experts.c_fc.bias", E * H, 0.1f);
    fill("experts.c_proj.weight", E * C * H, 0.5f);
    fill("experts.c_proj.bias", E * C, 0.1f);
    return t;
}

TEST(MoeCapacity, SwitchDropsExactlyTheTokensPastCapacity) {
    const GptConfig c = layer_config("switch", 1.0f, 2.0f);
    const int N = 12;
    auto params = random_params(c, 1);
    const MoeTensors p = bind_tensors(params, "switch");
    std::vector<float> x(N * 8), y(N * 8);
    for (size_t i = 0; i < x.size(); ++i) x[i] = rng_normal(5, i);
    // A bias far above any logit sends every token to expert 0: cap = ceil(1.0·12/4) = 3.
    const std::vector<float> bias = {1000, 0, 0, 0};
    MoeMlp layer(c, N);
    layer.forward(y.data(), x.data(), p, N, true, bias.data(), 0);
    for (int n = 0; n < N; ++n) {
        EXPECT_EQ(layer.choice()[n], 0);
        EXPECT_EQ(layer.admitted()[n], n < 3 ? 1 : 0) << n;
        double row = 0;
        for (int c2 = 0; c2 < 8; ++c2) row += std::abs(y[n * 8 + c2]);
        if (n < 3)
            EXPECT_GT(row, 0.0) << n;
        else
            EXPECT_EQ(row, 0.0) << "dropped token " << n << " must output 0";
    }
    EXPECT_EQ(layer.stats().dropped, 9);
    EXPECT_EQ(layer.stats().choices, 12);
    // Evaluation's factor 2.0: cap 6.
    layer.forward(y.data(), x.data(), p, N, false, bias.data(), 0);
    EXPECT_EQ(layer.stats().dropped, 6);
}

TEST(MoeCapacity, GShardSecondChoicesShareTheFirstChoicesBudget) {
    // cf 0.5: cap = ceil(0.5·2·12/4) = 3 per expert. Every token: first choice 0, second 1;
    // then one expert-1-first token would be refused after expert 1's first choices fill.
    const GptConfig c = layer_config("gshard", 0.5f, 0.5f);
    const int N = 12;
    auto params = random_params(c, 2);
    const MoeTensors p = bind_tensors(params, "gshard");
    std::vector<float> x(N * 8), y(N * 8);
    for (size_t i = 0; i < x.size(); ++i) x[i] = rng_normal(6, i);
    const std::vector<float> bias = {1000, 500, 0, 0};
    MoeMlp layer(c, N);
    layer.forward(y.data(), x.data(), p, N, false, bias.data(), 0);  // eval: every second kept
    for (int n = 0; n < N; ++n) {
        EXPECT_EQ(layer.choice()[n * 2], 0);
        EXPECT_EQ(layer.choice()[n * 2 + 1], 1);
        EXPECT_EQ(layer.admitted()[n * 2], n < 3 ? 1 : 0) << n;
        EXPECT_EQ(layer.admitted()[n * 2 + 1], n < 3 ? 1 : 0) << n;
    }
    EXPECT_EQ(layer.stats().dropped, 18);
    // Now expert 1 is everyone's first choice and expert 0 the second: the second
    // choices (to 0) get expert 0's whole budget since no first choice used it, while
    // expert 1's first choices are capped at 3.
    const std::vector<float> bias2 = {500, 1000, 0, 0};
    layer.forward(y.data(), x.data(), p, N, false, bias2.data(), 0);
    for (int n = 0; n < N; ++n) {
        EXPECT_EQ(layer.admitted()[n * 2], n < 3 ? 1 : 0);
        EXPECT_EQ(layer.admitted()[n * 2 + 1], n < 3 ? 1 : 0);
    }
}

// A one-expert MoE (olnn k = 1, or switch with room for every token) with the dense
// MLP's weights computes exactly the dense model.
void expect_single_expert_equals_dense(const std::string& variant) {
    GptConfig dense;
    dense.n_layer = 2;
    dense.n_head = 2;
    dense.n_embd = 16;
    dense.block_size = 8;
    dense.vocab_size = 50;
    GptConfig moe = dense;
    moe.mlp = variant;
    moe.n_experts = 1;
    moe.top_k = 1;
    GptModel a(dense, 2, 8), b(moe, 2, 8);
    a.init_weights(11);
    b.init_weights(11);
    for (const ParamSpec& s : a.layout().specs()) {
        std::string name = s.name;
        const auto pos = name.find("mlp.");
        if (pos != std::string::npos) name.replace(pos, 4, "mlp.experts.");
        const ParamSpec& t = b.layout().get(name);
        ASSERT_EQ(s.numel, t.numel) << name;
        std::memcpy(b.params() + t.offset, a.params() + s.offset, s.numel * sizeof(float));
    }
    std::vector<int> tokens(16), targets(16);
    for (int i = 0; i < 16; ++i) {
        tokens[i] = (i * 7) % 50;
        targets[i] = (i * 3) % 50;
    }
    for (bool training : {true, false}) {
        b.set_training(training);
        b.set_rng_key(123);
        const float la = a.forward(tokens.data(), targets.data(), 2, 8);
        const std::vector<float> logits(a.logits(), a.logits() + 16 * 64);
        const float lb = b.forward(tokens.data(), targets.data(), 2, 8);
        EXPECT_EQ(la, lb) << variant;
        EXPECT_EQ(0, std::memcmp(logits.data(), b.logits(), logits.size() * sizeof(float)))
            << variant << " training " << training;
    }
}

TEST(MoeModel, OneExpertOlnnIsExactlyDense) {
    expect_single_expert_equals_dense("olnn");
}
TEST(MoeModel, OneExpertSwitchIsExactlyDense) {
    expect_single_expert_equals_dense("switch");
}

TEST(MoeModel, WholeModelGradientWithAuxLossesMatchesFiniteDifferences) {
    for (const std::string variant : {"olnn", "switch", "gshard", "condmlp", "moa"}) {
        GptConfig c;
        c.n_layer = 2;
        c.n_head = 2;
        c.n_embd = 8;
        c.block_size = 6;
        c.vocab_size = 11;
        if (variant == "moa") {
            c.attn = "moa";
        } else {
            c.mlp = variant;
        }
        c.expert_hidden = 12;
        c.moe_every = 2;  // block 1 only: a dense and an MoE block
        c.w_load = c.w_importance = c.lambda_z = c.w_penalty = 0.1f;
        GptModel model(c, 2, 5);
        const uint64_t key = rng_key(9, 2);
        for (size_t i = 0; i < model.layout().total_floats(); ++i) {
            model.params()[i] = 0.3f * rng_normal(key, i);
        }
        std::vector<int> tokens(10), targets(10);
        for (int i = 0; i < 10; ++i) {
            tokens[i] = static_cast<int>(rng_u64(key, 100 + i) % 11);
            targets[i] = static_cast<int>(rng_u64(key, 200 + i) % 11);
        }
        model.set_rng_key(77);
        model.zero_grad();
        model.forward(tokens.data(), targets.data(), 2, 5);
        model.backward();
        model.freeze_moe_routing(true);
        const std::vector<float> analytic(model.grads(),
                                          model.grads() + model.layout().total_floats());
        auto loss = [&]() {
            model.forward(tokens.data(), targets.data(), 2, 5);
            double sum = 0;
            for (int i = 0; i < 10; ++i) sum += model.losses()[i];
            return sum / 10 + model.aux_loss();
        };
        testing::GradCheckOptions options;
        options.max_coords = 16;
        options.rel_tol = 5e-3;  // a whole fp32 model: see model_gpt_test.cpp
        for (const ParamSpec& s : model.layout().specs()) {
            if (!s.name.starts_with(variant == "moa" ? "transformer.h.1.attn"
                                                     : "transformer.h.1.mlp")) {
                continue;
            }
            // Through a whole fp32 model the query maps' gradients (~1e-6 here) sit below the
            // central difference's rounding noise (~1e-5); MoaFiniteDifferences checks them at
            // the layer, where they are large.
            if (s.name.find("q_experts") != std::string::npos) continue;
            EXPECT_TRUE(testing::gradient_matches(variant + " " + s.name, model.params() + s.offset,
                                                  s.numel, analytic.data() + s.offset, loss,
                                                  options));
        }
    }
}

TEST(MoeModel, BiasUpdateFollowsDeepSeekRule) {
    GptConfig c;
    c.n_layer = 1;
    c.n_head = 1;
    c.n_embd = 8;
    c.block_size = 8;
    c.vocab_size = 20;
    c.mlp = "switch";
    GptModel model(c, 4, 8);
    model.init_weights(1);
    std::vector<int> tokens(32), targets(32);
    for (int i = 0; i < 32; ++i) tokens[i] = targets[i] = i % 20;
    model.set_rng_key(1);
    model.forward(tokens.data(), targets.data(), 4, 8);
    const std::vector<int64_t> counts = model.moe_counts();
    int64_t total = 0;
    for (auto v : counts) total += v;
    EXPECT_EQ(total, 32);
    const double mean = 32.0 / 4;
    model.update_moe_bias(0.001f);
    for (int e = 0; e < 4; ++e) {
        const float want =
            counts[e] > 1.2 * mean ? -0.001f : (counts[e] < 0.8 * mean ? 0.001f : 0.0f);
        EXPECT_FLOAT_EQ(model.moe_bias()[e], want) << e;
        EXPECT_EQ(model.moe_counts()[e], 0);
    }
    // Evaluation forwards do not count.
    model.set_training(false);
    model.forward(tokens.data(), targets.data(), 4, 8);
    for (auto v : model.moe_counts()) EXPECT_EQ(v, 0);
}

}  // namespace
}  // namespace greenmoe

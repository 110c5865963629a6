// GptModel against Hugging Face logits, an independent PyTorch reference (forward,
// gradients, ten AdamW steps) and finite differences.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <vector>

#include "grad_check.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/train/adamw.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::shared_data;

std::filesystem::path reference_file() {
    return std::filesystem::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/gpt2_reference.safetensors";
}

GptConfig reference_config() {
    GptConfig c;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 16;
    c.block_size = 8;
    c.vocab_size = 37;
    c.finalize();
    return c;
}

std::vector<int> read_ints(const SafetensorsFile& f, const std::string& name) {
    const TensorInfo& t = f.get(name);
    EXPECT_EQ(t.dtype, DType::I32);
    std::vector<int> out(static_cast<size_t>(t.numel()));
    std::memcpy(out.data(), f.data(t), t.nbytes);
    return out;
}

TEST(GptModel, MatchesHuggingFaceLogitsOfTinyGpt2) {
    const auto dir = shared_data() / "hf-fixtures";
    const auto j = nlohmann::json::parse(read_file(dir / "tiny_gpt2_logits.json"));
    GptConfig c;
    c.n_layer = j["config"]["n_layer"];
    c.n_head = j["config"]["n_head"];
    c.n_embd = j["config"]["n_embd"];
    c.block_size = j["config"]["n_ctx"];
    c.vocab_size = j["config"]["vocab"];
    c.finalize();
    const auto sequences = j["sequences"].get<std::vector<std::vector<int>>>();
    const int B = static_cast<int>(sequences.size()), T = static_cast<int>(sequences[0].size());
    GptModel model(c, B, T);
    load_hf_gpt2_weights(dir / "tiny_gpt2.safetensors", model);
    std::vector<int> tokens;
    for (const auto& s : sequences) tokens.insert(tokens.end(), s.begin(), s.end());
    model.forward(tokens.data(), nullptr, B, T);
    double max_diff = 0.0;
    for (int b = 0; b < B; ++b) {
        for (int t = 0; t < T; ++t) {
            for (int v = 0; v < c.vocab_size; ++v) {
                const double expected = j["logits"][b][t][v].get<double>();
                const double got =
                    model.logits()[(static_cast<size_t>(b) * T + t) * c.padded_vocab_size + v];
                max_diff = std::max(max_diff, std::abs(expected - got));
            }
        }
    }
    EXPECT_LT(max_diff, 1e-4) << "max abs logit difference";
}

// The key part of c_attn's bias has an exactly zero true gradient (softmax ignores a
// constant added to a row of scores), so the reference holds rounding noise there.
bool is_key_bias(const ParamSpec& s, int C, size_t i) {
    return s.name.ends_with("attn.c_attn.bias") && i >= static_cast<size_t>(C) &&
           i < static_cast<size_t>(2 * C);
}

TEST(GptModel, MatchesTorchReferenceForwardGradientsAndTenAdamWSteps) {
    const SafetensorsFile ref = SafetensorsFile::open(reference_file());
    const GptConfig c = reference_config();
    const std::vector<int> tokens = read_ints(ref, "tokens");
    const std::vector<int> targets = read_ints(ref, "targets");
    const int B = static_cast<int>(ref.get("tokens").shape[0]);
    const int T = static_cast<int>(ref.get("tokens").shape[1]);
    GptModel model(c, B, T);
    read_hf_gpt2_tensors(ref, "param.", model, model.params());

    const float loss = model.forward(tokens.data(), targets.data(), B, T);
    EXPECT_NEAR(loss, ref.read_f32("loss")[0], 1e-5);
    const std::vector<float> logits = ref.read_f32("logits");
    double max_logit_diff = 0.0;
    for (int n = 0; n < B * T; ++n) {
        for (int v = 0; v < c.vocab_size; ++v) {
            max_logit_diff = std::max(
                max_logit_diff,
                std::abs(double(logits[n * c.vocab_size + v]) -
                         model.logits()[static_cast<size_t>(n) * c.padded_vocab_size + v]));
        }
    }
    EXPECT_LT(max_logit_diff, 1e-5);

    model.zero_grad();
    model.backward();
    std::vector<float> expected(model.layout().total_floats());
    read_hf_gpt2_tensors(ref, "grad.", model, expected.data());
    for (const ParamSpec& s : model.layout().specs()) {
        double max_diff = 0.0, max_ref = 0.0;
        for (size_t i = 0; i < s.numel; ++i) {
            if (is_key_bias(s, c.n_embd, i)) continue;
            const double e = expected[s.offset + i], g = model.grads()[s.offset + i];
            max_diff = std::max(max_diff, std::abs(e - g));
            max_ref = std::max(max_ref, std::abs(e));
        }
        EXPECT_LT(max_diff, 1e-5 + 1e-4 * max_ref) << s.name;
    }

    // Ten AdamW steps on the same batch, clipping at 1.0, as the reference did.
    const auto& meta = ref.metadata();
    AdamWConfig ac;
    ac.beta1 = std::stof(meta.at("beta1"));
    ac.beta2 = std::stof(meta.at("beta2"));
    ac.eps = std::stof(meta.at("eps"));
    ac.weight_decay = std::stof(meta.at("weight_decay"));
    const float lr = std::stof(meta.at("lr"));
    AdamW optimizer(model.layout(), ac);
    const std::vector<float> step_losses = ref.read_f32("step_losses");
    const std::vector<float> grad_norms = ref.read_f32("grad_norms");
    for (size_t step = 0; step < step_losses.size(); ++step) {
        model.zero_grad();
        const float l = model.forward(tokens.data(), targets.data(), B, T);
        model.backward();
        const double norm = grad_norm(model.grads(), model.layout());
        EXPECT_NEAR(l, step_losses[step], 2e-5 * (1 + step)) << "step " << step;
        EXPECT_NEAR(norm, grad_norms[step], 1e-4 * (1 + step)) << "step " << step;
        clip_grads(model.grads(), model.layout(), norm, 1.0);
        optimizer.step(model.params(), model.grads(), lr);
    }
    read_hf_gpt2_tensors(ref, "final.", model, expected.data());
    for (const ParamSpec& s : model.layout().specs()) {
        double max_diff = 0.0;
        for (size_t i = 0; i < s.numel; ++i) {
            if (is_key_bias(s, c.n_embd, i)) continue;
            if (s.name == "transformer.wte.weight" && i >= size_t(c.vocab_size) * c.n_embd) {
                EXPECT_EQ(model.params()[s.offset + i], 0.0f) << "padded vocabulary row";
                continue;
            }
            max_diff = std::max(
                max_diff, std::abs(double(expected[s.offset + i]) - model.params()[s.offset + i]));
        }
        EXPECT_LT(max_diff, 1e-4) << s.name;
    }
}

TEST(GptModel, WholeModelGradientMatchesFiniteDifferences) {
    GptConfig c;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 8;
    c.block_size = 6;
    c.vocab_size = 11;
    c.finalize();
    const int B = 2, T = 5;
    GptModel model(c, B, T);
    // Large random weights everywhere (not the init) so every path carries gradient.
    const uint64_t key = rng_key(7, 1);
    for (size_t i = 0; i < model.layout().total_floats(); ++i) {
        model.params()[i] = 0.3f * rng_normal(key, i);
    }
    std::vector<int> tokens(B * T), targets(B * T);
    for (int i = 0; i < B * T; ++i) {
        tokens[i] = static_cast<int>(rng_u64(key, 1000 + i) % c.vocab_size);
        targets[i] = static_cast<int>(rng_u64(key, 2000 + i) % c.vocab_size);
    }
    targets[3] = -1;  // an ignored position
    auto loss = [&]() {
        model.forward(tokens.data(), targets.data(), B, T);
        double sum = 0.0;
        int count = 0;
        for (int i = 0; i < B * T; ++i) {
            if (targets[i] >= 0) {
                sum += model.losses()[i];
                ++count;
            }
        }
        return sum / count;
    };
    model.zero_grad();
    model.forward(tokens.data(), targets.data(), B, T);
    model.backward();
    const std::vector<float> analytic(model.grads(), model.grads() + model.layout().total_floats());
    testing::GradCheckOptions options;
    options.max_coords = 24;
    // A whole fp32 model stacks rounding noise (≈1e-7 of the loss per forward) against
    // the curvature error of the step through 2 layers of LayerNorm and softmax: 5e-3 is
    // the tightest tolerance both stay under. The exact check is the PyTorch reference
    // test above (gradients within 1e-5).
    options.rel_tol = 5e-3;
    for (const ParamSpec& s : model.layout().specs()) {
        size_t n = s.numel;
        // Padded vocabulary rows are outside the model's function.
        if (s.name == "transformer.wte.weight") n = size_t(c.vocab_size) * c.n_embd;
        EXPECT_TRUE(testing::gradient_matches(s.name, model.params() + s.offset, n,
                                              analytic.data() + s.offset, loss, options));
    }
}

TEST(GptModel, SmallerBatchGivesSameLogitsAsFullBatch) {
    GptConfig c;
    c.n_layer = 1;
    c.n_head = 2;
    c.n_embd = 16;
    c.block_size = 8;
    c.vocab_size = 50;
    GptModel model(c, 3, 8);
    model.init_weights(3);
    std::vector<int> tokens(3 * 8);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int>((i * 7) % 50);
    model.forward(tokens.data(), nullptr, 3, 8);
    const int Vp = model.config().padded_vocab_size;
    std::vector<float> full(model.logits(), model.logits() + 3 * 8 * Vp);
    // The second sequence alone, and its first 5 tokens (causality).
    model.forward(tokens.data() + 8, nullptr, 1, 8);
    for (int i = 0; i < 8 * Vp; ++i) ASSERT_NEAR(model.logits()[i], full[8 * Vp + i], 1e-5);
    model.forward(tokens.data() + 8, nullptr, 1, 5);
    for (int i = 0; i < 5 * Vp; ++i) ASSERT_NEAR(model.logits()[i], full[8 * Vp + i], 1e-5);
}

TEST(GptModel, InitFollowsNanoGpt) {
    GptConfig c;
    c.n_layer = 4;
    c.n_head = 4;
    c.n_embd = 64;
    c.block_size = 32;
    c.vocab_size = 1000;
    GptModel model(c, 1, 1);
    model.init_weights(1);
    model.init_weights(1);  // idempotent
    auto stddev = [&](const std::string& name, size_t count = 0) {
        const ParamSpec& s = model.layout().get(name);
        const size_t n = count ? count : s.numel;
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; ++i) {
            sum += model.params()[s.offset + i];
            sq += double(model.params()[s.offset + i]) * model.params()[s.offset + i];
        }
        return std::sqrt(sq / n - (sum / n) * (sum / n));
    };
    EXPECT_NEAR(stddev("transformer.wte.weight", 1000 * 64), 0.02, 0.001);
    EXPECT_NEAR(stddev("transformer.h.1.mlp.c_fc.weight"), 0.02, 0.001);
    EXPECT_NEAR(stddev("transformer.h.1.mlp.c_proj.weight"), 0.02 / std::sqrt(8.0), 0.001);
    EXPECT_NEAR(stddev("transformer.h.2.attn.c_proj.weight"), 0.02 / std::sqrt(8.0), 0.001);
    const ParamSpec& wte = model.layout().get("transformer.wte.weight");
    EXPECT_EQ(model.config().padded_vocab_size, 1024);
    for (size_t i = 1000 * 64; i < wte.numel; ++i) ASSERT_EQ(model.params()[wte.offset + i], 0.0f);
    const ParamSpec& ln = model.layout().get("transformer.h.0.ln_1.weight");
    const ParamSpec& bias = model.layout().get("transformer.h.0.attn.c_attn.bias");
    for (size_t i = 0; i < ln.numel; ++i) EXPECT_EQ(model.params()[ln.offset + i], 1.0f);
    for (size_t i = 0; i < bias.numel; ++i) EXPECT_EQ(model.params()[bias.offset + i], 0.0f);
    EXPECT_EQ(pad_vocab_size(50257), 50304);
}

TEST(GptModel, RejectsOutOfRangeTokens) {
    GptConfig c;
    c.n_layer = 1;
    c.n_head = 1;
    c.n_embd = 8;
    c.block_size = 4;
    c.vocab_size = 10;
    GptModel model(c, 1, 4);
    std::vector<int> tokens = {1, 2, 10, 3};
    EXPECT_THROW(model.forward(tokens.data(), nullptr, 1, 4), Error);
    EXPECT_THROW(model.forward(tokens.data(), nullptr, 2, 4), Error);
}

TEST(GptWeights, HuggingFaceExportImportRoundTrip) {
    testing::TempDir tmp;
    GptConfig c = reference_config();
    GptModel a(c, 1, 4), b(c, 1, 4);
    a.init_weights(5);
    export_hf_gpt2(tmp.path() / "hf", a);
    EXPECT_EQ(read_hf_gpt2_config(tmp.path() / "hf").n_head, c.n_head);
    load_hf_gpt2_weights(tmp.path() / "hf", b);
    EXPECT_EQ(0, std::memcmp(a.params(), b.params(), a.layout().total_floats() * sizeof(float)));
    // The exported file uses the Conv1D layout: [in, out].
    const SafetensorsFile f = SafetensorsFile::open(tmp.path() / "hf/model.safetensors");
    EXPECT_EQ(f.get("h.0.attn.c_attn.weight").shape, (std::vector<int64_t>{16, 48}));
    EXPECT_EQ(f.get("wte.weight").shape, (std::vector<int64_t>{37, 16}));
}

TEST(GptWeights, GreenmoeWeightsRoundTripAndMismatchErrors) {
    testing::TempDir tmp;
    GptConfig c = reference_config();
    GptModel a(c, 1, 4);
    a.init_weights(9);
    save_gpt_weights(tmp / "w.safetensors", a);
    const GptConfig back = read_gpt_weights_config(tmp / "w.safetensors");
    EXPECT_EQ(back.n_embd, 16);
    GptModel b(back, 1, 4);
    load_gpt_weights(tmp / "w.safetensors", b);
    EXPECT_EQ(0, std::memcmp(a.params(), b.params(), a.layout().total_floats() * sizeof(float)));

    GptConfig other = c;
    other.n_embd = 32;
    GptModel wrong(other, 1, 4);
    try {
        load_gpt_weights(tmp / "w.safetensors", wrong);
        FAIL() << "shape mismatch accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("transformer.wte.weight"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace greenmoe

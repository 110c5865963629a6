// Models whose routed MLPs keep different numbers of experts (n_experts_by_layer, as
// `greenmoe simplify` writes them): training, gradients, weights files, generation, and a
// trained model pruned and then evaluated.
#include <gtest/gtest.h>

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "grad_check.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/eval/sampler.h"
#include "greenmoe/eval/val_loss.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/moeits/simplify.h"
#include "greenmoe/train/adamw.h"
#include "greenmoe/train/checkpoint.h"
#include "greenmoe/train/datasets.h"
#include "greenmoe/train/moe_step_stats.h"
#include "greenmoe/train/train_config.h"
#include "greenmoe/train/trainer.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::error_message;

// Three routed blocks keeping 3, 4 and 2 of 4 experts; with dense_between, four blocks
// routed every second one ({0, 3, 0, 2}: a dense MLP between two pruned ones).
GptConfig pruned_config(const std::string& mlp, bool dense_between = false) {
    GptConfig c;
    c.n_layer = dense_between ? 4 : 3;
    c.n_head = 2;
    c.n_embd = 16;
    c.block_size = 32;
    c.vocab_size = 61;
    c.mlp = mlp;
    c.n_experts = 4;
    c.top_k = 2;
    c.moe_every = dense_between ? 2 : 1;
    c.n_experts_by_layer = dense_between ? std::vector<int>{0, 3, 0, 2} : std::vector<int>{3, 4, 2};
    c.finalize();
    return c;
}

std::vector<int> some_tokens(int n, int salt, int V) {
    std::vector<int> t(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) t[size_t(i)] = (i * 17 + salt * 5 + 3) % V;
    return t;
}

TEST(ModelPrunedExperts, ConfigValidatesAndRoundTripsThroughJson) {
    GptConfig c = pruned_config("olnn");
    EXPECT_EQ(c.mlp_experts(0), 3);
    EXPECT_EQ(c.mlp_experts(1), 4);
    EXPECT_EQ(c.mlp_experts(2), 2);
    const nlohmann::json j = c;
    EXPECT_EQ(j.at("n_experts_by_layer"), (std::vector<int>{3, 4, 2}));
    GptConfig back;
    from_json(j, back);
    back.finalize();
    EXPECT_EQ(back.n_experts_by_layer, c.n_experts_by_layer);

    GptConfig uniform = c;
    uniform.n_experts_by_layer.clear();
    EXPECT_FALSE(nlohmann::json(uniform).contains("n_experts_by_layer"));
    EXPECT_EQ(uniform.mlp_experts(2), 4);

    GptConfig bad = c;
    bad.n_experts_by_layer = {3, 4};
    EXPECT_NE(error_message([&] { bad.finalize(); }).find("one entry per block"),
              std::string::npos);
    bad.n_experts_by_layer = {3, 1, 2};  // below top_k = 2
    EXPECT_NE(error_message([&] { bad.finalize(); }).find("n_experts_by_layer[1]"),
              std::string::npos);
    bad.n_experts_by_layer = {5, 4, 2};  // pruning never adds experts
    EXPECT_NE(error_message([&] { bad.finalize(); }).find("n_experts_by_layer[0]"),
              std::string::npos);
    bad.moe_every = 2;  // block 1 is the only MoE block: 0 required elsewhere
    bad.n_experts_by_layer = {0, 3, 0};
    EXPECT_NO_THROW(bad.finalize());
    EXPECT_EQ(bad.mlp_experts(0), 0);
    EXPECT_EQ(bad.mlp_experts(1), 3);
    bad.n_experts_by_layer = {1, 3, 0};
    EXPECT_NE(error_message([&] { bad.finalize(); }).find("must be 0"), std::string::npos);
}

TEST(ModelPrunedExperts, LayoutBiasRowsAndFlops) {
    const GptConfig c = pruned_config("switch");
    GptModel model(c, 2, 16);
    EXPECT_EQ(model.layout().get("transformer.h.0.mlp.experts.c_fc.weight").shape,
              (std::vector<int64_t>{3, 64, 16}));
    EXPECT_EQ(model.layout().get("transformer.h.2.mlp.router.weight").shape,
              (std::vector<int64_t>{2, 16}));
    EXPECT_EQ(model.layout().get("transformer.h.2.mlp.experts.c_proj.bias").shape,
              (std::vector<int64_t>{2, 16}));
    ASSERT_EQ(model.num_moe_layers(), 3);
    EXPECT_EQ(model.moe_experts(0), 3);
    EXPECT_EQ(model.moe_experts(2), 2);
    EXPECT_EQ(model.moe_bias_size(), 9u);
    EXPECT_EQ(model.moe_bias_shape(), (std::vector<int64_t>{9}));
    EXPECT_EQ(model.moe_bias_row(2, false), model.moe_bias() + 7);
    EXPECT_EQ(model.moe_bias_row(1, true), nullptr);

    GptConfig uniform = c;
    uniform.n_experts_by_layer.clear();
    GptModel full(uniform, 2, 16);
    EXPECT_EQ(full.moe_bias_shape(), (std::vector<int64_t>{3, 4}));
    EXPECT_LT(model.num_parameters(), full.num_parameters());
    // Switch computes one expert per token either way; only the routers shrink.
    EXPECT_LT(model.flops_per_token(16), full.flops_per_token(16));
    EXPECT_GT(model.flops_per_token(16), 0.99 * full.flops_per_token(16));
}

TEST(ModelPrunedExperts, TrainsAndBalancesPerLayer) {
    GptConfig c = pruned_config("olnn");
    c.bias_gamma = 0.01f;
    GptModel model(c, 2, 16);
    model.init_weights(3);
    const auto tokens = some_tokens(32, 1, c.vocab_size);
    const auto targets = some_tokens(32, 2, c.vocab_size);
    model.set_rng_key(5);
    MoeStepStats stats;
    stats.reset(model);
    const float loss = model.forward(tokens.data(), targets.data(), 2, 16);
    EXPECT_TRUE(std::isfinite(loss));
    stats.add(model);
    model.zero_grad();
    model.backward();
    double norm = 0;
    for (size_t i = 0; i < model.num_parameters(); ++i)
        norm += double(model.grads()[i]) * model.grads()[i];
    EXPECT_TRUE(std::isfinite(norm));
    EXPECT_GT(norm, 0.0);
    // Every layer's counts add up to its choices, over its own experts.
    int64_t total = 0;
    for (size_t e = 0; e < model.moe_counts().size(); ++e) total += model.moe_counts()[e];
    EXPECT_EQ(total, 3 * 32 * 2);
    const nlohmann::json j = stats.to_json(model);
    ASSERT_EQ(j.size(), 3u);
    EXPECT_EQ(j[0].at("load").size(), 3u);
    EXPECT_EQ(j[2].at("load").size(), 2u);
    EXPECT_EQ(j[2].at("bias").size(), 2u);
    model.update_moe_bias(c.bias_gamma);
    for (const int64_t n : model.moe_counts()) EXPECT_EQ(n, 0);
    float moved = 0;
    for (size_t i = 0; i < model.moe_bias_size(); ++i) moved += std::abs(model.moe_bias()[i]);
    EXPECT_GT(moved, 0.0f);  // 64 tokens over 2–4 experts are never all balanced
}

TEST(ModelPrunedExperts, ExpertGradientMatchesFiniteDifferences) {
    for (const bool dense_between : {false, true}) {
        const std::string mlp = dense_between ? "switch" : "olnn";
        // Small and with weights of 0.3·N(0, 1), as model_moe_test.cpp's whole-model check,
        // so that the gradients stand well above the fp32 rounding of the loss; the
        // auxiliary losses on, so that they are checked over the pruned expert counts too.
        GptConfig c = pruned_config(mlp, dense_between);
        c.n_embd = 8;
        c.expert_hidden = 12;
        c.block_size = 6;
        c.vocab_size = 11;
        c.padded_vocab_size = 0;
        c.w_load = c.w_importance = c.lambda_z = c.w_penalty = 0.1f;
        GptModel model(c, 2, 5);
        const uint64_t key = rng_key(9, 2);
        for (size_t i = 0; i < model.layout().total_floats(); ++i) {
            model.params()[i] = 0.3f * rng_normal(key, i);
        }
        const auto tokens = some_tokens(10, 3, c.vocab_size);
        const auto targets = some_tokens(10, 4, c.vocab_size);
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
        const int a = dense_between ? 1 : 0, b = dense_between ? 3 : 2;
        for (const std::string& name :
             {fmt::format("transformer.h.{}.mlp.experts.c_fc.weight", b),
              fmt::format("transformer.h.{}.mlp.experts.c_proj.weight", a),
              fmt::format("transformer.h.{}.mlp.router.weight", b),
              fmt::format("transformer.h.{}.mlp.router.weight", a)}) {
            const ParamSpec& s = model.layout().get(name);
            testing::GradCheckOptions o;
            o.max_coords = 16;
            o.rel_tol = 5e-3;  // a whole fp32 model: see model_gpt_test.cpp
            EXPECT_TRUE(testing::gradient_matches(mlp + " " + name, model.params() + s.offset,
                                                  s.numel, analytic.data() + s.offset, loss, o));
        }
        model.freeze_moe_routing(false);
    }
}

TEST(ModelPrunedExperts, WeightsFileRoundTrips) {
    testing::TempDir tmp;
    const GptConfig c = pruned_config("olnn");
    GptModel model(c, 1, 16);
    model.init_weights(21);
    save_gpt_weights(tmp / "m.safetensors", model);
    const GptConfig read = read_gpt_weights_config(tmp / "m.safetensors");
    EXPECT_EQ(read.n_experts_by_layer, c.n_experts_by_layer);
    auto loaded = load_model(tmp / "m.safetensors", 1, 16);
    ASSERT_EQ(loaded->num_parameters(), model.num_parameters());
    for (size_t i = 0; i < model.num_parameters(); ++i) {
        ASSERT_EQ(loaded->params()[i], model.params()[i]) << i;
    }
    // Same logits as the original.
    const auto tokens = some_tokens(16, 5, c.vocab_size);
    model.set_training(false);
    model.forward(tokens.data(), nullptr, 1, 16);
    loaded->forward(tokens.data(), nullptr, 1, 16);
    const size_t n = 16 * size_t(c.padded_vocab_size);
    EXPECT_EQ(testing::max_abs_diff(std::vector<float>(model.logits(), model.logits() + n),
                                    loaded->logits()),
              0.0);

    // A file of the unpruned shape is refused by name for the pruned config.
    GptConfig uniform = c;
    uniform.n_experts_by_layer.clear();
    GptModel full(uniform, 1, 16);
    save_gpt_weights(tmp / "full.safetensors", full);
    const std::string msg =
        error_message([&] { load_gpt_weights(tmp / "full.safetensors", model); });
    EXPECT_NE(msg.find("transformer.h.0.mlp"), std::string::npos) << msg;
}

TEST(ModelPrunedExperts, CheckpointKeepsTheRaggedBias) {
    testing::TempDir tmp;
    GptConfig c = pruned_config("olnn", true);
    c.bias_gamma = 0.01f;
    GptModel model(c, 1, 8);
    model.init_weights(4);
    for (size_t i = 0; i < model.moe_bias_size(); ++i) model.moe_bias()[i] = 0.5f + float(i);
    AdamW optimizer(model.layout(), AdamWConfig{});
    TrainState state;
    state.step = 3;
    TrainConfig run;
    run.model = c;
    state.config = train_config_to_json(run);
    const auto dir = save_checkpoint(tmp / "run", model, optimizer, state, 1);
    const SafetensorsFile file = SafetensorsFile::open(dir / "optimizer.safetensors");
    ASSERT_NE(file.find("moe_bias"), nullptr);
    EXPECT_EQ(file.find("moe_bias")->shape, (std::vector<int64_t>{5}));  // rows of 3 and 2

    GptModel back(c, 1, 8);
    AdamW back_optimizer(back.layout(), AdamWConfig{});
    load_checkpoint(dir, back, &back_optimizer);
    ASSERT_EQ(back.moe_bias_size(), 5u);
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(back.moe_bias()[i], 0.5f + float(i));
    EXPECT_EQ(back.moe_bias_row(3, false)[1], 4.5f);
}

TEST(ModelPrunedExperts, CachedGenerationEqualsRecomputing) {
    for (const char* mlp : {"olnn", "switch", "gshard"}) {
        const GptConfig c = pruned_config(mlp, std::string(mlp) == "switch");
        GptModel model(c, 1, 32);
        model.init_weights(7);
        for (size_t i = 0; i < model.num_parameters(); ++i) model.params()[i] *= 10.0f;
        for (size_t i = 0; i < model.moe_bias_size(); ++i) {
            model.moe_bias()[i] = 0.1f * static_cast<float>(i % 3);
        }
        SampleOptions greedy;
        greedy.temperature = 0.0f;
        greedy.max_new_tokens = 29;
        const std::vector<int> prompt = some_tokens(3, 9, c.vocab_size);
        const std::vector<int> cached = generate(model, prompt, greedy);
        ASSERT_EQ(cached.size(), 29u);
        EXPECT_EQ(cached, generate_recompute(model, prompt, greedy)) << mlp;
    }
}

TrainConfig tiny_moe_run(const std::string& mlp) {
    TrainConfig c;
    c.model.n_layer = 2;
    c.model.n_head = 2;
    c.model.n_embd = 32;
    c.model.block_size = 32;
    c.model.mlp = mlp;
    c.model.n_experts = 4;
    c.model.top_k = 1;
    c.model.w_load = 0.01f;
    c.batch_size = 4;
    c.seq_len = 32;
    c.max_steps = 12;
    c.lr = 3e-3f;
    c.warmup_steps = 3;
    c.val_every = 0;
    c.val_tokens = 1024;
    c.sample_every = 0;
    c.checkpoint_every = 12;
    c.dataset = "tinyshakespeare";
    return c;
}

// The issue: a model trained by greenmoe and pruned by `greenmoe simplify` must load and
// evaluate, through the library and through the CLI.
TEST(ModelPrunedExperts, TrainedModelPrunedBySimplifyEvaluates) {
    testing::TempDir tmp;
    TrainOptions o;
    o.out_dir = tmp / "run";
    o.data.data_dir = testing::shared_data();
    o.data.cache_dir = tmp / "cache";
    o.quiet = true;
    const TrainSummary s = train(tiny_moe_run("switch"), o);
    ASSERT_EQ(s.steps_done, 12);
    const ShardPatterns patterns = prepare_named_dataset("tinyshakespeare", o.data);

    moeits::SimplifyOptions so;
    so.model = tmp / "run";
    so.out = tmp / "pruned";
    so.keep = 2;
    so.show_progress = false;
    so.log = [](const std::string&) {};
    const moeits::SimplifyResult r = moeits::simplify_model(so);
    ASSERT_EQ(r.layers.size(), 2u);

    auto full = load_model(tmp / "run", 4, 32);
    auto pruned = load_model(tmp / "pruned" / "model.safetensors", 4, 32);
    EXPECT_EQ(pruned->config().n_experts_by_layer, (std::vector<int>{2, 2}));
    EXPECT_EQ(pruned->config().n_experts, 4);
    EXPECT_LT(pruned->num_parameters(), full->num_parameters());
    EXPECT_EQ(pruned->layout().get("transformer.h.1.mlp.experts.c_fc.weight").shape[0], 2);

    const ValidationSet set(patterns.val, 32, 1024);
    const double full_loss = validation_loss(*full, set);
    const double pruned_loss = validation_loss(*pruned, set);
    // `eval` of the simplified folder finds the original run's validation data and size
    // through summary.json, so the two losses compare.
    const auto pruned_eval = testing::run_command(
        testing::greenmoe_binary().string() + " eval --no-energy -q --task val-loss --checkpoint " +
        (tmp / "pruned").string() + " --cache-dir " + (tmp / "cache").string() + " 2>&1");
    ASSERT_EQ(pruned_eval.exit_code, 0) << pruned_eval.output;
    EXPECT_NE(
        pruned_eval.output.find(fmt::format("val-loss: {:.6f} over 1024 tokens", pruned_loss)),
        std::string::npos)
        << pruned_eval.output;
    EXPECT_TRUE(std::isfinite(pruned_loss));
    EXPECT_GT(pruned_loss, 0.0);
    EXPECT_LT(pruned_loss, full_loss + 2.0) << "unpruned " << full_loss;

    // The kept experts are the original ones: routing a token to a kept expert in the pruned
    // model uses exactly the original weights.
    const auto kept = r.layers[0].kept;
    ASSERT_EQ(kept.size(), 2u);
    const ParamSpec& fw = full->layout().get("transformer.h.0.mlp.experts.c_fc.weight");
    const ParamSpec& pw = pruned->layout().get("transformer.h.0.mlp.experts.c_fc.weight");
    const size_t per = fw.numel / 4;
    for (size_t k = 0; k < 2; ++k) {
        const float* a = full->params() + fw.offset + size_t(kept[k]) * per;
        const float* b = pruned->params() + pw.offset + k * per;
        EXPECT_EQ(std::vector<float>(a, a + per), std::vector<float>(b, b + per)) << k;
    }

    // The same through the command line.
    const auto run = testing::run_command(testing::greenmoe_binary().string() +
                                          " simplify --model " + (tmp / "run").string() +
                                          " --out " + (tmp / "cli").string() + " --keep 2 2>&1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    const auto eval =
        testing::run_command(testing::greenmoe_binary().string() + " eval --checkpoint " +
                             (tmp / "cli" / "model.safetensors").string() +
                             " --task val-loss --val-data '" + patterns.val + "' 2>&1");
    ASSERT_EQ(eval.exit_code, 0) << eval.output;
    EXPECT_NE(eval.output.find("val-loss:"), std::string::npos) << eval.output;
    EXPECT_EQ(eval.output.find("nan"), std::string::npos) << eval.output;

    // --criterion frequency keeps, per layer, the two experts the calibration tokens chose
    // most often (counted here from the model's own routing statistics).
    full->set_training(false);
    full->set_capacity_limits(false);
    std::vector<std::vector<int64_t>> counts(2, std::vector<int64_t>(4, 0));
    const ValidationSet calibration(patterns.val, 32, 2048);
    std::vector<int> inputs(32), targets(32);
    for (size_t i = 0; i < calibration.num_sequences(); ++i) {
        calibration.sequence(i, inputs.data(), targets.data());
        full->forward(inputs.data(), nullptr, 1, 32);
        for (int l = 0; l < 2; ++l) {
            for (int e = 0; e < 4; ++e)
                counts[size_t(l)][size_t(e)] += full->moe_stats(l).counts[size_t(e)];
        }
    }
    so.out = tmp / "frequency";
    so.criterion = moeits::Criterion::Frequency;
    so.calibration_data = patterns.val;
    so.calibration_tokens = 2048;
    const moeits::SimplifyResult fr = moeits::simplify_model(so);
    ASSERT_EQ(fr.layers.size(), 2u);
    for (int l = 0; l < 2; ++l) {
        const std::vector<int64_t>& c = counts[size_t(l)];
        const std::vector<int>& k = fr.layers[size_t(l)].kept;
        ASSERT_EQ(k.size(), 2u);
        for (int e = 0; e < 4; ++e) {
            if (std::find(k.begin(), k.end(), e) != k.end()) continue;
            // Every dropped expert was chosen no more often than any kept one.
            EXPECT_LE(c[size_t(e)], std::min(c[size_t(k[0])], c[size_t(k[1])])) << "layer " << l;
        }
    }
    EXPECT_TRUE(load_model(tmp / "frequency" / "model.safetensors", 1, 1) != nullptr);
    so.out = tmp / "frequency_without_data";
    so.calibration_data.clear();
    EXPECT_NE(
        testing::error_message([&] { moeits::simplify_model(so); }).find("--calibration-data"),
        std::string::npos);
}

// The loss-free balancing bias steers routing, so pruning keeps the kept experts' entries
// (from the checkpoint's optimizer state, then from the simplified model file when pruned
// again), and healing (`train --init-from` the simplified folder) starts from them.
TEST(ModelPrunedExperts, PruningKeepsTheBiasAndHealingTrainsOnFromIt) {
    testing::TempDir tmp;
    TrainOptions o;
    o.out_dir = tmp / "run";
    o.data.data_dir = testing::shared_data();
    o.data.cache_dir = tmp / "cache";
    o.quiet = true;
    o.energy.enabled = false;
    TrainConfig run = tiny_moe_run("switch");
    run.model.bias_gamma = 0.05f;
    ASSERT_EQ(train(run, o).steps_done, 12);
    const ShardPatterns patterns = prepare_named_dataset("tinyshakespeare", o.data);

    auto full = load_model(tmp / "run", 1, 32);
    ASSERT_EQ(full->moe_bias_shape(), (std::vector<int64_t>{2, 4}));
    const std::vector<float> full_bias(full->moe_bias(), full->moe_bias() + 8);
    float moved = 0.0f;
    for (const float b : full_bias) moved += std::abs(b);
    ASSERT_GT(moved, 0.0f) << "the run should have moved the bias";

    moeits::SimplifyOptions so;
    so.model = tmp / "run";
    so.out = tmp / "pruned";
    so.keep = 2;
    so.show_progress = false;
    so.log = [](const std::string&) {};
    const moeits::SimplifyResult r = moeits::simplify_model(so);
    ASSERT_EQ(r.layers.size(), 2u);
    const SafetensorsFile file = SafetensorsFile::open(tmp / "pruned" / "model.safetensors");
    ASSERT_NE(file.find("moe_bias"), nullptr);
    EXPECT_EQ(file.find("moe_bias")->shape, (std::vector<int64_t>{2, 2}));
    // The bias is routing state, not a parameter: the counts leave it out.
    EXPECT_EQ(r.params_after, load_model(tmp / "pruned", 1, 1)->num_parameters());

    auto pruned = load_model(tmp / "pruned", 1, 32);
    for (int l = 0; l < 2; ++l) {
        for (int k = 0; k < 2; ++k) {
            EXPECT_EQ(pruned->moe_bias_row(l, false)[k],
                      full_bias[size_t(4 * l + r.layers[size_t(l)].kept[size_t(k)])])
                << "layer " << l << " kept " << k;
        }
    }

    // Pruned again (switch routes one expert, so one may stay): the bias now comes from the
    // simplified model file and is sliced once more.
    so.model = tmp / "pruned";
    so.out = tmp / "pruned_again";
    so.keep = 1;
    const moeits::SimplifyResult again = moeits::simplify_model(so);
    auto once_more = load_model(tmp / "pruned_again", 1, 32);
    ASSERT_EQ(once_more->moe_bias_shape(), (std::vector<int64_t>{2, 1}));
    for (int l = 0; l < 2; ++l) {
        EXPECT_EQ(once_more->moe_bias_row(l, false)[0],
                  pruned->moe_bias_row(l, false)[again.layers[size_t(l)].kept[0]]);
    }

    // Healing: a few more steps from the simplified folder, with the pruned layout and the
    // kept bias, bring the validation loss down.
    const ValidationSet set(patterns.val, 32, 1024);
    const double pruned_loss = validation_loss(*pruned, set);
    // `eval` of the simplified folder finds the original run's validation data and size
    // through summary.json, so the two losses compare.
    const auto eval = testing::run_command(
        testing::greenmoe_binary().string() + " eval --no-energy -q --task val-loss --checkpoint " +
        (tmp / "pruned").string() + " --cache-dir " + (tmp / "cache").string() + " 2>&1");
    ASSERT_EQ(eval.exit_code, 0) << eval.output;
    EXPECT_NE(eval.output.find(fmt::format("val-loss: {:.6f} over 1024 tokens", pruned_loss)),
              std::string::npos)
        << eval.output;
    TrainConfig heal = tiny_moe_run("switch");
    heal.max_steps = 8;
    heal.checkpoint_every = 8;
    heal.lr = 1e-3f;
    o.out_dir = tmp / "healed";
    o.init_from = (tmp / "pruned").string();
    const TrainSummary healed_run = train(heal, o);
    ASSERT_EQ(healed_run.steps_done, 8);
    auto healed = load_model(tmp / "healed", 1, 32);
    EXPECT_EQ(healed->config().n_experts_by_layer, (std::vector<int>{2, 2}));
    EXPECT_EQ(healed->config().bias_gamma, 0.05f) << "the model section comes from --init-from";
    const double healed_loss = validation_loss(*healed, set);
    EXPECT_LT(healed_loss, pruned_loss);
    // Starting from the pruned weights, not from scratch: the same steps on a new model of
    // the pruned shape end higher.
    heal.model = healed->config();
    o.out_dir = tmp / "scratch";
    o.init_from.clear();
    ASSERT_EQ(train(heal, o).steps_done, 8);
    EXPECT_LT(healed_loss, validation_loss(*load_model(tmp / "scratch", 1, 32), set));
}

}  // namespace
}  // namespace greenmoe

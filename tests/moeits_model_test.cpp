// MoE layer discovery (MoEITS model adapter) on real tiny Hugging Face checkpoints and on
// greenmoe checkpoints.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/moeits/model_adapter.h"
#include "moeits_test_support.h"
#include "test_support.h"

namespace greenmoe::moeits {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::error_message;
using testing::TempDir;

TEST(MoeitsModel, FindsMixtralLayers) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    const auto m = MoeModel::open(dir);
    EXPECT_EQ(m.architecture(), "mixtral");
    EXPECT_EQ(m.experts_key(), "num_local_experts");
    EXPECT_EQ(m.num_layers(), 2);
    EXPECT_TRUE(m.skipped().empty());
    ASSERT_EQ(m.layers().size(), 2u);
    for (int l = 0; l < 2; ++l) {
        const MoeLayer& layer = m.layers()[l];
        EXPECT_EQ(layer.layer, l);
        EXPECT_EQ(layer.n_experts, 4);
        EXPECT_EQ(layer.top_k, 2);
        EXPECT_FALSE(layer.stacked);
        EXPECT_EQ(layer.kind_names, (std::vector<std::string>{"w1", "w2", "w3"}));
        ASSERT_EQ(layer.kind_weights.size(), 3u);
        for (double w : layer.kind_weights) EXPECT_DOUBLE_EQ(w, 1.0 / 3);
        const std::string p = "model.layers." + std::to_string(l) + ".block_sparse_moe.";
        EXPECT_EQ(layer.router_tensors, std::vector<std::string>{p + "gate.weight"});
        EXPECT_EQ(layer.router_weight, p + "gate.weight");
        EXPECT_EQ(layer.expert_suffixes,
                  (std::vector<std::string>{"w1.weight", "w2.weight", "w3.weight"}));
        EXPECT_EQ(layer.expert_tensor(3, "w2.weight"), p + "experts.3.w2.weight");
        EXPECT_EQ(layer.expert_tensor_names().size(), 12u);
        EXPECT_TRUE(layer.shared_tensors.empty());
        EXPECT_EQ(layer.params_per_expert, 3 * 12 * 8);
        EXPECT_EQ(m.matrix_numel(layer, 1), 96);
    }
    // read_matrix decodes exactly the expert's tensor.
    std::vector<float> w;
    m.read_matrix(m.layers()[1], 2, 2, w);
    EXPECT_EQ(w, m.tensors().read_f32("model.layers.1.block_sparse_moe.experts.2.w3.weight"));
}

TEST(MoeitsModel, FindsQwen3MoeLayers) {
    TempDir tmp;
    const auto m = MoeModel::open(testing::hf_fixture_folder(tmp, "tiny_qwen3_moe"));
    EXPECT_EQ(m.architecture(), "qwen3_moe");
    ASSERT_EQ(m.layers().size(), 2u);
    const MoeLayer& layer = m.layers()[1];
    EXPECT_EQ(layer.n_experts, 4);
    EXPECT_EQ(layer.top_k, 2);
    EXPECT_EQ(layer.kind_names, (std::vector<std::string>{"gate_proj", "up_proj", "down_proj"}));
    EXPECT_EQ(layer.kind_weights, (std::vector<double>{0.2, 0.4, 0.4}));
    EXPECT_EQ(layer.router_tensors, std::vector<std::string>{"model.layers.1.mlp.gate.weight"});
    EXPECT_EQ(layer.params_per_expert, 3 * 5 * 8);
    std::vector<float> w;
    m.read_matrix(layer, 3, 2, w);
    EXPECT_EQ(w, m.tensors().read_f32("model.layers.1.mlp.experts.3.down_proj.weight"));
}

TEST(MoeitsModel, FindsDeepseekV2LayersSkippingDenseAndShared) {
    TempDir tmp;
    const auto m = MoeModel::open(testing::hf_fixture_folder(tmp, "tiny_deepseek_v2"));
    EXPECT_EQ(m.architecture(), "deepseek_v2");
    EXPECT_EQ(m.experts_key(), "n_routed_experts");
    ASSERT_EQ(m.layers().size(), 1u);
    const MoeLayer& layer = m.layers()[0];
    EXPECT_EQ(layer.layer, 1);
    EXPECT_EQ(layer.n_experts, 4);
    EXPECT_EQ(layer.top_k, 2);
    EXPECT_EQ(layer.shared_tensors,
              (std::vector<std::string>{"model.layers.1.mlp.shared_experts.down_proj.weight",
                                        "model.layers.1.mlp.shared_experts.gate_proj.weight",
                                        "model.layers.1.mlp.shared_experts.up_proj.weight"}));
    for (const auto& name : layer.expert_tensor_names()) {
        EXPECT_EQ(name.find("shared"), std::string::npos) << name;
    }
    ASSERT_EQ(m.skipped().size(), 1u);
    EXPECT_EQ(m.skipped()[0].layer, 0);
    EXPECT_NE(m.skipped()[0].reason.find("first_k_dense_replace"), std::string::npos);
}

TEST(MoeitsModel, Qwen2SharedExpertAndRouterBiasRowsAreFound) {
    TempDir tmp;
    const auto dir = testing::qwen2_moe_folder(tmp);
    const auto m = MoeModel::open(dir);
    EXPECT_EQ(m.architecture(), "qwen2_moe");
    ASSERT_EQ(m.layers().size(), 2u);
    const MoeLayer& layer = m.layers()[0];
    EXPECT_EQ(layer.n_experts, 4);
    EXPECT_EQ(layer.shared_tensors.size(), 4u);  // 3 projections + shared_expert_gate
    EXPECT_EQ(layer.router_tensors,
              (std::vector<std::string>{"model.layers.0.mlp.gate.e_score_correction_bias",
                                        "model.layers.0.mlp.gate.weight"}));
    EXPECT_EQ(layer.expert_tensor_names().size(), 12u);
}

TEST(MoeitsModel, FindsGreenmoeLayers) {
    TempDir tmp;
    GptConfig cfg = testing::tiny_moe_config("olnn");
    cfg.moe_every = 2;
    cfg.n_layer = 4;
    const auto path = testing::write_greenmoe_model(tmp / "g" / "model.safetensors", cfg);
    // A checkpoint folder and the weights file both work.
    for (const fs::path& p : {path, path.parent_path()}) {
        const auto m = MoeModel::open(p);
        EXPECT_EQ(m.architecture(), "greenmoe");
        EXPECT_TRUE(m.is_greenmoe());
        EXPECT_EQ(m.num_layers(), 4);
        ASSERT_EQ(m.layers().size(), 2u);
        ASSERT_EQ(m.skipped().size(), 2u);
        EXPECT_EQ(m.skipped()[0].layer, 0);
        EXPECT_EQ(m.skipped()[1].layer, 2);
        const MoeLayer& layer = m.layers()[1];
        EXPECT_EQ(layer.layer, 3);
        EXPECT_EQ(layer.n_experts, cfg.n_experts);
        EXPECT_EQ(layer.top_k, cfg.top_k);
        EXPECT_TRUE(layer.stacked);
        EXPECT_EQ(layer.kind_names, (std::vector<std::string>{"c_fc", "c_proj"}));
        EXPECT_EQ(layer.kind_weights, (std::vector<double>{0.5, 0.5}));
        EXPECT_EQ(layer.router_tensors,
                  (std::vector<std::string>{"transformer.h.3.mlp.router.weight",
                                            "transformer.h.3.mlp.noise.weight"}));
        EXPECT_EQ(layer.stacked_tensors.size(), 4u);
        const int64_t C = cfg.n_embd, H = cfg.hidden();
        EXPECT_EQ(layer.params_per_expert, 2 * H * C + H + C);
        // Expert e's c_proj matrix is slice e of the stacked tensor.
        const auto all = m.tensors().read_f32("transformer.h.3.mlp.experts.c_proj.weight");
        std::vector<float> w;
        m.read_matrix(layer, 2, 1, w);
        ASSERT_EQ(w.size(), static_cast<size_t>(C * H));
        EXPECT_TRUE(std::equal(w.begin(), w.end(), all.begin() + 2 * C * H));
    }
}

TEST(MoeitsModel, GreenmoeTopKFollowsTheRouter) {
    TempDir tmp;
    const auto sw = MoeModel::open(
        testing::write_greenmoe_model(tmp / "s.safetensors", testing::tiny_moe_config("switch")));
    EXPECT_EQ(sw.layers()[0].top_k, 1);
    EXPECT_EQ(sw.layers()[0].router_tensors.size(), 1u);  // no noise matrix
    const auto gs = MoeModel::open(
        testing::write_greenmoe_model(tmp / "g.safetensors", testing::tiny_moe_config("gshard")));
    EXPECT_EQ(gs.layers()[0].top_k, 2);
}

TEST(MoeitsModel, GreenmoeCondmlpAndMoaAreNotPrunable) {
    TempDir tmp;
    auto msg = error_message([&] {
        MoeModel::open(testing::write_greenmoe_model(tmp / "c.safetensors",
                                                     testing::tiny_moe_config("condmlp")));
    });
    EXPECT_NE(msg.find("condmlp"), std::string::npos) << msg;
    GptConfig moa = testing::tiny_moe_config("dense");
    moa.attn = "moa";
    msg = error_message(
        [&] { MoeModel::open(testing::write_greenmoe_model(tmp / "a.safetensors", moa)); });
    EXPECT_NE(msg.find("moa"), std::string::npos) << msg;
    // An MoE MLP beside moa attention: the MLP experts are prunable, the attention is skipped.
    moa.mlp = "switch";
    const auto m = MoeModel::open(testing::write_greenmoe_model(tmp / "b.safetensors", moa));
    EXPECT_EQ(m.layers().size(), static_cast<size_t>(moa.n_layer));
    ASSERT_FALSE(m.skipped().empty());
    EXPECT_NE(m.skipped()[0].reason.find("moa"), std::string::npos);
}

TEST(MoeitsModel, RefusesUnknownArchitecture) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    Json config = Json::parse(testing::read_text_file(dir / "config.json"));
    config["model_type"] = "llama";
    config["architectures"] = {"LlamaForCausalLM"};
    testing::write_text_file(dir / "config.json", config.dump());
    const auto msg = error_message([&] { MoeModel::open(dir); });
    EXPECT_NE(msg.find("llama"), std::string::npos) << msg;
    for (const auto& a : MoeModel::supported_architectures()) {
        EXPECT_NE(msg.find(a), std::string::npos) << a << ": " << msg;
    }
    // A dense GPT-2 checkpoint has no MoE layer either.
    TempDir tmp2;
    fs::create_directories(tmp2 / "gpt2");
    fs::copy_file(testing::shared_data() / "hf-fixtures" / "tiny_gpt2.safetensors",
                  tmp2 / "gpt2" / "model.safetensors");
    testing::write_text_file(tmp2 / "gpt2" / "config.json", R"({"model_type": "gpt2"})");
    const auto msg2 = error_message([&] { MoeModel::open(tmp2 / "gpt2"); });
    EXPECT_NE(msg2.find("gpt2"), std::string::npos) << msg2;
    EXPECT_NE(msg2.find("mixtral"), std::string::npos) << msg2;
}

TEST(MoeitsModel, RefusesTensorsThatContradictTheConfig) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    Json config = Json::parse(testing::read_text_file(dir / "config.json"));
    config["num_local_experts"] = 8;
    testing::write_text_file(dir / "config.json", config.dump());
    auto msg = error_message([&] { MoeModel::open(dir); });
    EXPECT_NE(msg.find("num_local_experts"), std::string::npos) << msg;
    EXPECT_NE(msg.find("layer 0"), std::string::npos) << msg;

    config["num_local_experts"] = 4;
    config.erase("num_experts_per_tok");
    testing::write_text_file(dir / "config.json", config.dump());
    msg = error_message([&] { MoeModel::open(dir); });
    EXPECT_NE(msg.find("num_experts_per_tok"), std::string::npos) << msg;

    fs::remove(dir / "config.json");
    msg = error_message([&] { MoeModel::open(dir); });
    EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
}

TEST(MoeitsModel, KindWeightsOption) {
    TempDir tmp;
    const auto dir = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    const auto m = MoeModel::open(dir, {1.0, 1.0, 2.0});
    EXPECT_EQ(m.layers()[0].kind_weights, (std::vector<double>{0.25, 0.25, 0.5}));
    auto msg = error_message([&] { MoeModel::open(dir, {0.5, 0.5}); });
    EXPECT_NE(msg.find("--weights"), std::string::npos) << msg;
    EXPECT_NE(msg.find("w1, w2, w3"), std::string::npos) << msg;
    msg = error_message([&] { MoeModel::open(dir, {1.0, -1.0, 1.0}); });
    EXPECT_NE(msg.find("--weights"), std::string::npos) << msg;
    msg = error_message([&] { MoeModel::open(dir, {0.0, 0.0, 0.0}); });
    EXPECT_NE(msg.find("--weights"), std::string::npos) << msg;

    EXPECT_EQ(parse_kind_weights("0.2,0.4,0.4"), (std::vector<double>{0.2, 0.4, 0.4}));
    for (const char* bad : {"", "0.2,,0.4", "a,b", "0.2;0.4", "1,2,"}) {
        const auto e = error_message([&] { parse_kind_weights(bad); });
        EXPECT_NE(e.find("--weights"), std::string::npos) << bad;
    }
}

}  // namespace
}  // namespace greenmoe::moeits

// config.json → ModelConfig: sliding-window layers, MoE layers, per-layer expert counts of
// pruned models, and the errors for what the engine does not run.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/hf/hf_config.h"
#include "test_support.h"

namespace greenmoe::hf {
namespace {

using Json = nlohmann::json;

Json base(const std::string& model_type, int layers) {
    return Json{{"model_type", model_type}, {"vocab_size", 10},
                {"hidden_size", 8},         {"num_hidden_layers", layers},
                {"num_attention_heads", 2}, {"intermediate_size", 12}};
}

std::vector<int> windows(const ModelConfig& m) {
    std::vector<int> w;
    for (const auto& l : m.layers) w.push_back(l.sliding_window);
    return w;
}

std::vector<int> experts(const ModelConfig& m) {
    std::vector<int> e;
    for (const auto& l : m.layers) e.push_back(l.n_experts);
    return e;
}

std::string parse_error(const Json& j) {
    return greenmoe::testing::error_message([&] { parse_model_config(j, "cfg/config.json"); });
}

TEST(HfConfig, QwenSlidingWindowLayersFollowEachArchitecture) {
    Json j = base("qwen2", 4);
    j["use_sliding_window"] = true;
    j["sliding_window"] = 5;
    j["max_window_layers"] = 2;
    EXPECT_EQ(windows(parse_model_config(j, "c")), (std::vector<int>{0, 0, 5, 5}));
    j["use_sliding_window"] = false;
    EXPECT_EQ(windows(parse_model_config(j, "c")), (std::vector<int>{0, 0, 0, 0}));

    j = base("qwen2_moe", 4);
    j.update(Json{{"use_sliding_window", true},
                  {"sliding_window", 5},
                  {"max_window_layers", 3},
                  {"num_experts", 4},
                  {"num_experts_per_tok", 2},
                  {"moe_intermediate_size", 4}});
    EXPECT_EQ(windows(parse_model_config(j, "c")), (std::vector<int>{5, 0, 5, 0}));

    j["model_type"] = "qwen3_moe";
    EXPECT_EQ(windows(parse_model_config(j, "c")), (std::vector<int>{5, 5, 5, 5}));

    j["layer_types"] = {"full_attention", "sliding_attention", "full_attention", "full_attention"};
    EXPECT_EQ(windows(parse_model_config(j, "c")), (std::vector<int>{0, 5, 0, 0}));

    j = base("mistral", 2);
    j["sliding_window"] = 3;
    EXPECT_EQ(windows(parse_model_config(j, "c")), (std::vector<int>{3, 3}));
}

TEST(HfConfig, MoeLayersFollowEachArchitecture) {
    Json j = base("qwen2_moe", 6);
    j.update(Json{{"num_experts", 4},
                  {"num_experts_per_tok", 2},
                  {"moe_intermediate_size", 4},
                  {"decoder_sparse_step", 2},
                  {"mlp_only_layers", {3}}});
    EXPECT_EQ(experts(parse_model_config(j, "c")), (std::vector<int>{0, 4, 0, 0, 0, 4}));

    j = base("deepseek_v2", 6);
    j.update(Json{{"n_routed_experts", 4},
                  {"num_experts_per_tok", 2},
                  {"moe_intermediate_size", 4},
                  {"first_k_dense_replace", 1},
                  {"moe_layer_freq", 2},
                  {"kv_lora_rank", 4},
                  {"qk_nope_head_dim", 2},
                  {"qk_rope_head_dim", 2},
                  {"v_head_dim", 2}});
    EXPECT_EQ(experts(parse_model_config(j, "c")), (std::vector<int>{0, 0, 4, 0, 4, 0}));
}

TEST(HfConfig, PrunedModelsCarryTheirExpertCountsPerLayer) {
    Json j = base("mixtral", 3);
    j.update(Json{
        {"num_local_experts", 4}, {"num_experts_per_tok", 2}, {"num_experts_by_block", {3, 2, 4}}});
    EXPECT_EQ(experts(parse_model_config(j, "c")), (std::vector<int>{3, 2, 4}));

    j["num_experts_by_block"] = {3, 1, 4};
    EXPECT_NE(parse_error(j).find("fewer than num_experts_per_tok"), std::string::npos);
    j["num_experts_by_block"] = {3, 2};
    EXPECT_NE(parse_error(j).find("one expert count per layer (3)"), std::string::npos);

    j = base("qwen3_moe", 2);
    j.update(Json{{"num_experts", 4},
                  {"num_experts_per_tok", 2},
                  {"moe_intermediate_size", 4},
                  {"mlp_only_layers", {0}},
                  {"num_experts_by_block", {2, 3}}});
    EXPECT_NE(parse_error(j).find("layer 0 is a dense MLP"), std::string::npos);
}

TEST(HfConfig, UnsupportedInputIsNamed) {
    Json j = base("llama", 2);
    j["hidden_act"] = "gelu";
    std::string msg = parse_error(j);
    EXPECT_NE(msg.find("cfg/config.json: unsupported hidden_act 'gelu'"), std::string::npos) << msg;

    j = base("llama", 2);
    j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
    msg = parse_error(j);
    EXPECT_NE(msg.find("unsupported rope type 'dynamic'"), std::string::npos) << msg;

    j = base("llama", 2);
    j.erase("hidden_size");
    msg = parse_error(j);
    EXPECT_NE(msg.find("cfg/config.json: missing key 'hidden_size'"), std::string::npos) << msg;

    j = base("deepseek_v3", 2);
    j.update(Json{{"n_routed_experts", 4},
                  {"num_experts_per_tok", 2},
                  {"moe_intermediate_size", 4},
                  {"kv_lora_rank", 4},
                  {"qk_nope_head_dim", 2},
                  {"qk_rope_head_dim", 2},
                  {"v_head_dim", 2},
                  {"topk_method", "random"}});
    msg = parse_error(j);
    EXPECT_NE(msg.find("unsupported topk_method 'random'"), std::string::npos) << msg;

    j.erase("model_type");
    msg = parse_error(j);
    EXPECT_NE(msg.find("missing key 'model_type'"), std::string::npos) << msg;
}

}  // namespace
}  // namespace greenmoe::hf

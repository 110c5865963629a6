// The Hugging Face engine against Hugging Face's own float64 logits of the tiny fixtures,
// and its errors on bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/hf/hf_model.h"
#include "greenmoe/io/safetensors.h"
#include "test_support.h"

namespace greenmoe::hf {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::TempDir;

fs::path fixtures() {
    return greenmoe::testing::shared_data() / "hf-fixtures";
}

Json read_json(const fs::path& path) {
    std::ifstream in(path);
    return Json::parse(in);
}

// Largest |Δ| between the engine's logits and the reference over every sequence.
double max_logit_error(const HfModel& model, const fs::path& logits_json) {
    const Json ref = read_json(logits_json);
    const int vocab = model.config().vocab_size;
    double worst = 0.0;
    for (size_t s = 0; s < ref.at("sequences").size(); ++s) {
        const auto ids = ref["sequences"][s].get<std::vector<int32_t>>();
        const std::vector<float> got = model.logits(ids);
        const Json& want = ref["logits"][s];
        EXPECT_EQ(want.size(), ids.size());
        for (size_t t = 0; t < ids.size(); ++t) {
            EXPECT_EQ(want[t].size(), static_cast<size_t>(vocab));
            for (int v = 0; v < vocab; ++v) {
                const double d = std::abs(double(got[t * vocab + v]) - want[t][v].get<double>());
                worst = std::max(worst, d);
            }
        }
    }
    return worst;
}

class HfFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(HfFixture, LogitsMatchHuggingFace) {
    const std::string name = "tiny_" + GetParam();
    const HfModel model =
        HfModel::load(fixtures() / (name + "_config.json"), fixtures() / (name + ".safetensors"));
    const double err = max_logit_error(model, fixtures() / (name + "_logits.json"));
    RecordProperty("max_abs_error", std::to_string(err));
    std::printf("%s: max |Δ| = %.3g\n", name.c_str(), err);
    EXPECT_LE(err, 1e-4) << name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfFixture,
                         ::testing::Values("llama", "mistral", "mixtral", "qwen2", "qwen3",
                                           "qwen3_moe", "deepseek_v2", "granitemoeshared"),
                         [](const auto& info) { return info.param; });

// Made by tools/fixtures/make_hf_fixtures.py with transformers: the routing and attention
// variants the shared fixtures lack (Qwen2-MoE's gated shared expert, DeepSeek-V3's noaux_tc
// with YaRN, DeepSeek-V2's group_limited_greedy with q_lora_rank, OLMoE, GraniteMoE), and
// BF16, F16 and sharded weight files.
class HfGeneratedFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(HfGeneratedFixture, LogitsMatchHuggingFace) {
    const fs::path dir =
        fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "hf-models" / GetParam();
    const HfModel model = HfModel::load(dir);
    const double err = max_logit_error(model, dir / "logits.json");
    RecordProperty("max_abs_error", std::to_string(err));
    std::printf("%s: max |Δ| = %.3g\n", GetParam().c_str(), err);
    EXPECT_LE(err, 1e-4) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Generated, HfGeneratedFixture,
                         ::testing::Values("qwen2_moe", "deepseek_v3", "deepseek_v2_group", "olmoe",
                                           "granitemoe", "qwen2_moe_bf16", "deepseek_v3_f16",
                                           "granitemoe_sharded"),
                         [](const auto& info) { return info.param; });

// A Hugging Face folder: config.json beside the sharded weights and their index.
void sharded_llama_folder(const TempDir& dir) {
    fs::copy_file(fixtures() / "tiny_llama_config.json", dir / "config.json");
    fs::copy_file(fixtures() / "tiny_llama.safetensors.index.json",
                  dir / "model.safetensors.index.json");
    for (const char* shard :
         {"tiny_llama-00001-of-00002.safetensors", "tiny_llama-00002-of-00002.safetensors"}) {
        fs::copy_file(fixtures() / shard, dir / shard);
        fs::permissions(dir / shard, fs::perms::owner_write, fs::perm_options::add);
    }
}

TEST(HfModel, ShardedLlamaFolderMatches) {
    TempDir dir;
    sharded_llama_folder(dir);
    const HfModel model = HfModel::load(dir.path());
    EXPECT_LE(max_logit_error(model, fixtures() / "tiny_llama_logits.json"), 1e-4);
}

TEST(HfModel, TruncatedShardIsNamed) {
    TempDir dir;
    sharded_llama_folder(dir);
    const fs::path shard = dir / "tiny_llama-00002-of-00002.safetensors";
    fs::resize_file(shard, fs::file_size(shard) - 100);
    const std::string msg = greenmoe::testing::error_message([&] { HfModel::load(dir.path()); });
    EXPECT_NE(msg.find("tiny_llama-00002-of-00002.safetensors"), std::string::npos) << msg;
}

TEST(HfModel, MissingIndexEntryIsNamed) {
    TempDir dir;
    sharded_llama_folder(dir);
    Json index = read_json(dir / "model.safetensors.index.json");
    index["weight_map"].erase("model.norm.weight");
    std::ofstream(dir / "model.safetensors.index.json") << index.dump(1);
    const std::string msg = greenmoe::testing::error_message([&] { HfModel::load(dir.path()); });
    EXPECT_NE(msg.find("model.norm.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("model.safetensors.index.json"), std::string::npos) << msg;
}

// A fixture copied into a folder, with config edits, for the bad-input tests.
fs::path fixture_folder(const TempDir& dir, const std::string& name,
                        const std::function<void(Json&)>& edit) {
    Json config = read_json(fixtures() / ("tiny_" + name + "_config.json"));
    edit(config);
    std::ofstream(dir / "config.json") << config.dump(1);
    fs::copy_file(fixtures() / ("tiny_" + name + ".safetensors"), dir / "model.safetensors");
    return dir.path();
}

TEST(HfModel, UnknownModelTypeIsNamed) {
    TempDir dir;
    const auto path = fixture_folder(dir, "llama", [](Json& c) { c["model_type"] = "gpt_neox"; });
    const std::string msg = greenmoe::testing::error_message([&] { HfModel::load(path); });
    EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unsupported model_type 'gpt_neox'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("mixtral"), std::string::npos) << msg;
}

TEST(HfModel, UnsupportedRopeScalingIsNamed) {
    TempDir dir;
    const auto path = fixture_folder(dir, "llama", [](Json& c) {
        c["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 2.0}};
    });
    const std::string msg = greenmoe::testing::error_message([&] { HfModel::load(path); });
    EXPECT_NE(msg.find("rope_scaling"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'longrope'"), std::string::npos) << msg;
}

TEST(HfModel, ConfigTensorShapeMismatchIsNamed) {
    TempDir dir;
    // 12 → 10: the MLP tensors in the file keep their 12 rows.
    const auto path = fixture_folder(dir, "llama", [](Json& c) { c["intermediate_size"] = 10; });
    const std::string msg = greenmoe::testing::error_message([&] { HfModel::load(path); });
    EXPECT_NE(msg.find("model.layers.0.mlp.gate_proj.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("has shape [12, 8], expected [10, 8]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(HfModel, MissingTensorIsNamed) {
    TempDir dir;
    // Three layers in the config, two in the weights.
    const auto path = fixture_folder(dir, "qwen3_moe", [](Json& c) { c["num_hidden_layers"] = 3; });
    const std::string msg = greenmoe::testing::error_message([&] { HfModel::load(path); });
    EXPECT_NE(msg.find("missing tensor 'model.layers.2.input_layernorm.weight'"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("expected shape [8]"), std::string::npos) << msg;
}

TEST(HfModel, MissingExpertIsNamed) {
    TempDir dir;
    const auto path = fixture_folder(dir, "mixtral", [](Json& c) { c["num_local_experts"] = 5; });
    const std::string msg = greenmoe::testing::error_message([&] { HfModel::load(path); });
    EXPECT_NE(msg.find("block_sparse_moe.gate.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("expected [5, 8]"), std::string::npos) << msg;
}

TEST(HfModel, TokenOutsideVocabularyIsRefused) {
    const HfModel model =
        HfModel::load(fixtures() / "tiny_llama_config.json", fixtures() / "tiny_llama.safetensors");
    const std::vector<int32_t> ids = {1, 11};
    const std::string msg = greenmoe::testing::error_message([&] { model.logits(ids); });
    EXPECT_NE(msg.find("token id 11"), std::string::npos) << msg;
}

}  // namespace
}  // namespace greenmoe::hf

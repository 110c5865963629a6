// `greenmoe logits`: the JSON it prints holds Hugging Face's logits; bad ids are named.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::TempDir;

fs::path qwen3_folder(const TempDir& tmp) {
    const fs::path src = testing::shared_data() / "hf-fixtures";
    fs::copy_file(src / "tiny_qwen3_config.json", tmp / "config.json");
    fs::copy_file(src / "tiny_qwen3.safetensors", tmp / "model.safetensors");
    return tmp.path();
}

TEST(HfLogitsCli, JsonHoldsTheReferenceLogits) {
    TempDir tmp;
    const fs::path dir = qwen3_folder(tmp);
    const Json ref = Json::parse(
        testing::read_text_file(testing::shared_data() / "hf-fixtures" / "tiny_qwen3_logits.json"));
    const auto seq = ref["sequences"][0].get<std::vector<int>>();
    std::string ids;
    for (int i = 0; i < 5; ++i) {
        if (i) ids += ",";
        ids += std::to_string(seq[i]);
    }
    const auto r = testing::run_command(testing::greenmoe_binary().string() + " logits --model " +
                                        dir.string() + " --ids " + ids + " --json 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const Json got = Json::parse(r.output);
    ASSERT_EQ(got.at("logits").size(), 5u);
    // Causal: the logits of a prefix are those of the whole sequence at the same positions.
    for (size_t t = 0; t < 5; ++t) {
        ASSERT_EQ(got["logits"][t].size(), ref["logits"][0][t].size());
        for (size_t v = 0; v < got["logits"][t].size(); ++v) {
            EXPECT_NEAR(got["logits"][t][v].get<double>(), ref["logits"][0][t][v].get<double>(),
                        1e-4);
        }
    }
}

TEST(HfLogitsCli, BadIdsAndUnknownArchitectureAreNamed) {
    TempDir tmp;
    const fs::path dir = qwen3_folder(tmp);
    const std::string bin = testing::greenmoe_binary().string();
    auto r = testing::run_command(bin + " logits --model " + dir.string() + " --ids 1,x,3 2>&1");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("--ids: 'x' is not a token id"), std::string::npos) << r.output;
    r = testing::run_command(bin + " logits --model " + dir.string() + " --ids 1,99 2>&1");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("token id 99"), std::string::npos) << r.output;
    testing::write_text_file(dir / "config.json", R"({"model_type": "bloom"})");
    r = testing::run_command(bin + " logits --model " + dir.string() + " --ids 1 2>&1");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("unsupported model_type 'bloom'"), std::string::npos) << r.output;
    r = testing::run_command(bin + " logits --help 2>&1");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("--ids"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace greenmoe

// Generation with a Hugging Face model: greedy equals the argmax of full recomputation,
// sampling is reproducible by seed, top-k 1 and a tiny top-p are greedy, eos stops it.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/eval/hf_decode_batch.h"
#include "greenmoe/eval/text_generation.h"
#include "greenmoe/hf/generate.h"
#include "greenmoe/hf/hf_model.h"
#include "test_support.h"

namespace greenmoe::hf {
namespace {

namespace fs = std::filesystem;

HfModel load_fixture(const std::string& name) {
    const fs::path dir = greenmoe::testing::shared_data() / "hf-fixtures";
    return HfModel::load(dir / ("tiny_" + name + "_config.json"),
                         dir / ("tiny_" + name + ".safetensors"));
}

// The generation loop over the engine's own decoding (these fixtures have no tokenizer).
std::vector<int32_t> generate(const HfModel& model, const std::vector<int32_t>& prompt,
                              const GenerateOptions& o,
                              const std::function<void(int32_t)>& on_token = {}) {
    const DecoderFactory start = [&](int batch, int max_len) {
        return hf_decode_batch(model, batch, max_len);
    };
    return generate_tokens(start, 64, model.config().vocab_size, prompt, o, false, on_token);
}

class HfGenerate : public ::testing::TestWithParam<std::string> {};

TEST_P(HfGenerate, GreedyEqualsArgmaxOfRecomputation) {
    const HfModel model = load_fixture(GetParam());
    const int vocab = model.config().vocab_size;
    const std::vector<int32_t> prompt = {1, 2, 3};
    GenerateOptions o;
    o.temperature = 0.0;
    o.max_new_tokens = 10;
    const std::vector<int32_t> got = generate(model, prompt, o);
    ASSERT_EQ(got.size(), 10u);
    std::vector<int32_t> text = prompt;
    for (size_t i = 0; i < got.size(); ++i) {
        const std::vector<float> logits = model.logits(text);
        const float* last = logits.data() + (text.size() - 1) * static_cast<size_t>(vocab);
        EXPECT_EQ(got[i], std::max_element(last, last + vocab) - last) << i;
        text.push_back(got[i]);
    }
    // Stops after the first token when that token is an eos.
    o.stop_tokens = {99, got[0]};
    EXPECT_EQ(generate(model, prompt, o), std::vector<int32_t>{got[0]});
    // top-k 1 and a tiny top-p are greedy at any temperature.
    o.stop_tokens.clear();
    o.temperature = 1.5;
    o.top_k = 1;
    EXPECT_EQ(generate(model, prompt, o), got);
    o.top_k = 0;
    o.top_p = 1e-6;
    EXPECT_EQ(generate(model, prompt, o), got);
}

TEST_P(HfGenerate, SamplingIsReproducibleBySeed) {
    const HfModel model = load_fixture(GetParam());
    GenerateOptions o;
    o.temperature = 1.0;
    o.top_p = 0.9;
    o.max_new_tokens = 12;
    o.seed = 5;
    std::vector<int32_t> streamed;
    const auto a =
        generate(model, std::vector<int32_t>{4, 1}, o, [&](int32_t t) { streamed.push_back(t); });
    EXPECT_EQ(a, streamed);
    EXPECT_EQ(generate(model, std::vector<int32_t>{4, 1}, o), a);
    bool differs = false;
    for (uint64_t seed = 6; seed < 10 && !differs; ++seed) {
        o.seed = seed;
        differs = generate(model, std::vector<int32_t>{4, 1}, o) != a;
    }
    EXPECT_TRUE(differs);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfGenerate,
                         ::testing::Values("mistral", "qwen3_moe", "deepseek_v2"),
                         [](const auto& info) { return info.param; });

TEST(HfPickToken, TopKTopPAndTemperature) {
    const std::vector<float> logits = {0.0f, 3.0f, 2.0f, 1.0f};
    GenerateOptions o;
    o.temperature = 1.0;
    // The whole vocabulary: u sweeps every token in probability order (1, 2, 3, 0).
    EXPECT_EQ(pick_token(logits.data(), 4, o, 0.0), 1);
    EXPECT_EQ(pick_token(logits.data(), 4, o, 0.999999), 0);
    o.top_k = 2;
    EXPECT_EQ(pick_token(logits.data(), 4, o, 0.999999), 2);
    o.top_k = 0;
    o.top_p = 0.5;  // token 1 alone holds 0.64 of the mass
    EXPECT_EQ(pick_token(logits.data(), 4, o, 0.999999), 1);
    o.top_p = 0.8;  // tokens 1 and 2 hold 0.88
    EXPECT_EQ(pick_token(logits.data(), 4, o, 0.999999), 2);
    o.top_p = 1.0;
    o.temperature = 0.0;
    EXPECT_EQ(pick_token(logits.data(), 4, o, 0.999999), 1);
}

TEST(HfGenerateConfig, EosTokenIdMayBeAList) {
    const fs::path src = greenmoe::testing::shared_data() / "hf-fixtures";
    greenmoe::testing::TempDir tmp;
    fs::copy_file(src / "tiny_llama.safetensors", tmp / "model.safetensors");
    auto config =
        nlohmann::json::parse(greenmoe::testing::read_text_file(src / "tiny_llama_config.json"));
    config["eos_token_id"] = {2, 7};
    greenmoe::testing::write_text_file(tmp / "config.json", config.dump());
    EXPECT_EQ(HfModel::load(tmp.path()).config().eos_token_ids, (std::vector<int32_t>{2, 7}));
    greenmoe::testing::write_text_file(tmp / "generation_config.json", R"({"eos_token_id": 5})");
    EXPECT_EQ(HfModel::load(tmp.path()).config().eos_token_ids, (std::vector<int32_t>{5}));
}

}  // namespace
}  // namespace greenmoe::hf

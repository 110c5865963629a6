// LanguageModel's decoding for both kinds of model: a batch of sequences of different lengths
// equals each run alone, the cached generation equals recomputing the window for every token,
// the window restarts when the text fills it, and parameter counts against the tensors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/eval/language_model.h"
#include "greenmoe/eval/text_generation.h"
#include "greenmoe/io/safetensors.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;

fs::path fixtures() {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures";
}

std::unique_ptr<LanguageModel> open_fixture(const std::string& which) {
    if (which == "gpt2") {
        return open_language_model(fixtures() / "hellaswag/tiny_gpt2",
                                   testing::tokenizer_dir().string());
    }
    // Only token ids matter here; any tokenizer.json opens the model.
    return open_language_model(fixtures() / "hf-models" / which,
                               (fixtures() / "hf-tokenizers/granitemoe_tokenizer.json").string());
}

class Decoding : public ::testing::TestWithParam<const char*> {};

TEST_P(Decoding, BatchEqualsEachSequenceAlone) {
    const auto model = open_fixture(GetParam());
    const int vocab = model->vocab_size();
    const std::vector<std::vector<int32_t>> prompts = {{5, 9, 2, 7, 3}, {4}, {8, 8, 1}};
    const auto batch = model->start_decoding(3, 12);
    std::vector<float> together = batch->step(prompts);
    // A second step where the middle sequence sits out.
    const std::vector<std::vector<int32_t>> next = {{6, 1}, {}, {2}};
    const std::vector<float> after = batch->step(next);
    EXPECT_EQ(batch->length(0), 7);
    EXPECT_EQ(batch->length(1), 1);
    EXPECT_EQ(batch->length(2), 4);
    for (size_t s = 0; s < prompts.size(); ++s) {
        const auto alone = model->start_decoding(1, 12);
        const std::vector<float> first = alone->step({prompts[s]});
        for (int v = 0; v < vocab; ++v) {
            ASSERT_NEAR(first[size_t(v)], together[s * size_t(vocab) + size_t(v)], 1e-4)
                << GetParam() << " sequence " << s << " token " << v;
        }
        if (next[s].empty()) {
            // Its row is unchanged by a step it sat out.
            EXPECT_EQ(after[s * size_t(vocab)], together[s * size_t(vocab)]);
            continue;
        }
        const std::vector<float> second = alone->step({next[s]});
        for (int v = 0; v < vocab; ++v) {
            ASSERT_NEAR(second[size_t(v)], after[s * size_t(vocab) + size_t(v)], 1e-4)
                << GetParam() << " sequence " << s << " token " << v;
        }
    }
    // More than the allocated positions is refused.
    EXPECT_NE(testing::error_message([&] {
                  batch->step({std::vector<int32_t>(6, 1)});
              }).find("more than the 12 allocated"),
              std::string::npos);
}

TEST_P(Decoding, CachedGenerationEqualsRecomputation) {
    const auto model = open_fixture(GetParam());
    const std::vector<int32_t> prompt = {3, 1, 4, 1, 5};
    hf::GenerateOptions o;
    o.max_new_tokens = 8;
    o.temperature = 0.0;
    const auto greedy = generate_tokens(*model, prompt, o);
    ASSERT_EQ(greedy.size(), 8u);
    EXPECT_EQ(generate_tokens(*model, prompt, o, true), greedy);
    o.temperature = 0.9;
    o.top_k = 20;
    o.seed = 3;
    const auto sampled = generate_tokens(*model, prompt, o);
    EXPECT_EQ(generate_tokens(*model, prompt, o, true), sampled);
    EXPECT_EQ(generate_tokens(*model, prompt, o), sampled) << "same seed, same tokens";
}

INSTANTIATE_TEST_SUITE_P(Models, Decoding, ::testing::Values("gpt2", "olmoe", "deepseek_v3"));

TEST(DecodingWindow, GenerationGoesOnPastTheWindow) {
    // The fixture's window is 64 positions: 90 new tokens restart the cache from the last
    // 32 tokens (at 64 and again at 96 positions), and every token before the first restart
    // equals the recomputed text's.
    const auto model = open_fixture("gpt2");
    ASSERT_EQ(model->max_length(), 64);
    const std::vector<int32_t> prompt = {464, 2068, 7586};
    hf::GenerateOptions o;
    o.max_new_tokens = 90;
    o.temperature = 0.0;
    const auto cached = generate_tokens(*model, prompt, o);
    const auto recomputed = generate_tokens(*model, prompt, o, true);
    ASSERT_EQ(cached.size(), 90u);
    ASSERT_EQ(recomputed.size(), 90u);
    EXPECT_TRUE(std::equal(cached.begin(), cached.begin() + 61, recomputed.begin()));
}

TEST(DecodingText, StopTokensAndText) {
    const auto model = open_fixture("gpt2");
    EXPECT_TRUE(model->stop_tokens().empty());
    EXPECT_EQ(model->encode_prompt(""), std::vector<int32_t>{50256});
    EXPECT_EQ(model->decode(model->encode_prompt(" hello world")), " hello world");
    hf::GenerateOptions o;
    o.max_new_tokens = 4;
    o.temperature = 0.0;
    std::string streamed;
    const GeneratedText text =
        generate_text(*model, " hello", o, false, [&](const std::string& s) { streamed += s; });
    EXPECT_EQ(text.prompt_tokens, 1);
    EXPECT_EQ(text.new_tokens, 4);
    EXPECT_EQ(streamed, text.text);
    // Stopping at a token given as a stop token.
    const auto first = generate_tokens(*model, model->encode_prompt(" hello"), o);
    o.stop_tokens = {first[1]};
    const GeneratedText stopped = generate_text(*model, " hello", o);
    EXPECT_TRUE(stopped.stopped);
    // A tiny model repeats itself: it stops at the first occurrence.
    EXPECT_EQ(stopped.new_tokens,
              std::find(first.begin(), first.end(), first[1]) - first.begin() + 1);
}

// Σ elements of a safetensors file's tensors, and of those whose names contain `part`.
std::pair<int64_t, int64_t> count_elements(const fs::path& file, const std::string& part) {
    const SafetensorsFile f = SafetensorsFile::open(file);
    int64_t all = 0, some = 0;
    for (const TensorInfo& info : f.tensors()) {
        all += info.numel();
        if (info.name.find(part) != std::string::npos) some += info.numel();
    }
    return {all, some};
}

TEST(ModelSize, ActiveParametersCountTopKExperts) {
    // OLMoE fixture: every layer an MoE of n experts, top-k routed.
    const auto olmoe = open_fixture("olmoe");
    const ModelSize size = olmoe->size();
    const auto [all, experts] =
        count_elements(fixtures() / "hf-models/olmoe/model.safetensors", ".experts.");
    ASSERT_FALSE(size.experts_per_moe_layer.empty());
    const int n = size.experts_per_moe_layer.front();
    EXPECT_EQ(size.parameters, all);
    EXPECT_EQ(size.active_parameters, all - experts / n * (n - size.top_k));
    EXPECT_GT(size.top_k, 0);

    // greenmoe's dense GPT: all parameters active, no MoE layers.
    const ModelSize dense = open_fixture("gpt2")->size();
    EXPECT_EQ(dense.parameters, dense.active_parameters);
    EXPECT_TRUE(dense.experts_per_moe_layer.empty());
    EXPECT_EQ(dense.top_k, 0);
}

}  // namespace
}  // namespace greenmoe

// Instruction data for LoRA healing: records to template text, text to packed and padded
// token sequences with loss labels, on real tokenizer files.
#include "greenmoe/lora/instruction_data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "test_support.h"

namespace greenmoe::lora {
namespace {

namespace fs = std::filesystem;
using testing::error_message;
using testing::TempDir;
using testing::write_text_file;

fs::path fixtures() {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures";
}

hf::Tokenizer tokenizer_named(const std::string& name) {
    return hf::Tokenizer::load(fixtures() / "hf-tokenizers" / (name + "_tokenizer.json"));
}

int32_t id_of(const hf::Tokenizer& tokenizer, const std::string& token) {
    const auto id = tokenizer.token_to_id(token);
    EXPECT_TRUE(id.has_value()) << token;
    return id.value_or(0);
}

// A system prompt and two exchanges, as OpenHermes-2.5 writes them.
constexpr const char* kConversation =
    R"({"conversations": [{"from": "system", "value": "You are terse."},)"
    R"( {"from": "human", "value": "Name a colour."}, {"from": "gpt", "value": "Blue."},)"
    R"( {"from": "human", "value": "Another?"}, {"from": "gpt", "value": "Red, then."}]})";

std::vector<InstructionExample> read_text(const TempDir& dir, const std::string& text,
                                          const InstructionDataOptions& options = {}) {
    const fs::path path = dir / "data.jsonl";
    write_text_file(path, text);
    return read_instruction_file(path, options);
}

using Parts = std::vector<std::pair<std::string, bool>>;

Parts parts_of(const InstructionExample& example) {
    Parts parts;
    for (const auto& part : example.parts) parts.emplace_back(part.text, part.response);
    return parts;
}

std::string text_of(const InstructionExample& example) {
    std::string text;
    for (const auto& part : example.parts) text += part.text;
    return text;
}

InstructionExample plain(const std::string& text) {
    InstructionExample example;
    example.parts.push_back({text, true});
    example.ends_in_response = true;
    return example;
}

std::vector<int32_t> row(const TrainingSequences& s, const std::vector<int32_t>& v, int64_t r) {
    const auto begin = v.begin() + r * s.seq_len;
    return {begin, begin + s.seq_len};
}

std::vector<int32_t> as_int32(const std::vector<int>& ids) {
    return {ids.begin(), ids.end()};
}

// ---- formatting ----

TEST(InstructionData, InstructionResponseTemplateIsTheMoeitsFormat) {
    TempDir dir;
    const auto examples = read_text(dir, std::string(kConversation) + "\n");
    ASSERT_EQ(examples.size(), 1u);
    const Parts expected = {
        {"You are terse.\n\nInstruction:\nName a colour.\n\nResponse:\n", false},
        {"Blue.", true},
        {"\n\nInstruction:\nAnother?\n\nResponse:\n", false},
        {"Red, then.", true}};
    EXPECT_EQ(parts_of(examples[0]), expected);
    EXPECT_TRUE(examples[0].ends_in_response);
}

TEST(InstructionData, ChatMlTemplate) {
    TempDir dir;
    InstructionDataOptions options;
    options.template_name = "chatml";
    const auto examples = read_text(dir, kConversation, options);
    ASSERT_EQ(examples.size(), 1u);
    const Parts expected = {
        {"<|im_start|>system\nYou are terse.<|im_end|>\n"
         "<|im_start|>user\nName a colour.<|im_end|>\n"
         "<|im_start|>assistant\n",
         false},
        {"Blue.<|im_end|>", true},
        {"\n<|im_start|>user\nAnother?<|im_end|>\n<|im_start|>assistant\n", false},
        {"Red, then.<|im_end|>", true},
        {"\n", false}};
    EXPECT_EQ(parts_of(examples[0]), expected);
    EXPECT_TRUE(examples[0].ends_in_response);
}

TEST(InstructionData, UserAssistantAndChatMessagesAreConversations) {
    TempDir dir;
    const auto examples = read_text(
        dir,
        R"({"conversations": [{"from": "user", "value": "Hi"}, {"from": "assistant", "value": "Hello"}]})"
        "\n"
        R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})"
        "\n");
    ASSERT_EQ(examples.size(), 2u);
    const Parts expected = {{"Instruction:\nHi\n\nResponse:\n", false}, {"Hello", true}};
    EXPECT_EQ(parts_of(examples[0]), expected);
    EXPECT_EQ(parts_of(examples[1]), expected);
}

TEST(InstructionData, ConversationEndingInAHumanTurnDoesNotEndInAResponse) {
    TempDir dir;
    const auto examples = read_text(
        dir, R"({"conversations": [{"from": "human", "value": "A"}, {"from": "gpt", "value": "B"},)"
             R"( {"from": "human", "value": "C"}]})");
    const Parts expected = {
        {"Instruction:\nA\n\nResponse:\n", false}, {"B", true}, {"\n\nInstruction:\nC", false}};
    EXPECT_EQ(parts_of(examples[0]), expected);
    EXPECT_FALSE(examples[0].ends_in_response);
}

TEST(InstructionData, AlpacaRecordsAreOneExchange) {
    TempDir dir;
    const auto examples = read_text(
        dir, R"({"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"})"
             "\n"
             R"({"instruction": "Say hi.", "input": "", "output": "Hi."})"
             "\n"
             R"({"instruction": "Say bye.", "input": null, "output": "Bye.", "text": "ignored"})"
             "\n");
    ASSERT_EQ(examples.size(), 3u);
    EXPECT_EQ(parts_of(examples[0]),
              (Parts{{"Instruction:\nAdd the numbers.\n\nInput:\n2 and 3\n\nResponse:\n", false},
                     {"5", true}}));
    EXPECT_EQ(parts_of(examples[1]),
              (Parts{{"Instruction:\nSay hi.\n\nResponse:\n", false}, {"Hi.", true}}));
    EXPECT_EQ(parts_of(examples[2]),
              (Parts{{"Instruction:\nSay bye.\n\nResponse:\n", false}, {"Bye.", true}}));
}

TEST(InstructionData, PlainTextRecordsAreAllResponse) {
    TempDir dir;
    InstructionDataOptions options;
    options.text_field = "content";
    const auto examples = read_text(dir,
                                    "\n"
                                    R"({"content": "Once upon a time.", "id": 7})"
                                    "\r\n  \n"
                                    R"({"content": ""})",
                                    options);
    ASSERT_EQ(examples.size(), 2u);
    EXPECT_EQ(parts_of(examples[0]), (Parts{{"Once upon a time.", true}}));
    EXPECT_TRUE(examples[0].ends_in_response);
    EXPECT_TRUE(examples[1].parts.empty());  // an empty text: only its EOS will remain
}

// ---- tokens ----

// Parts tokenized one by one give the tokens of the whole text (no token of these texts spans
// a part boundary), for byte-level BPE and for tokenizers that prepend "▁" to a text, where a
// part encoded alone would start with a spurious "▁".
TEST(InstructionData, PartsTokenizeAsTheWholeText) {
    TempDir dir;
    for (const char* name : {"qwen2", "olmoe", "mixtral", "deepseek_v2", "granitemoe"}) {
        SCOPED_TRACE(name);
        const hf::Tokenizer tokenizer = tokenizer_named(name);
        const int32_t eos = 0;
        for (const char* template_name : {"instruction-response", "chatml"}) {
            SCOPED_TRACE(template_name);
            InstructionDataOptions options;
            options.template_name = template_name;
            options.pack = false;
            options.seq_len = 256;
            const auto examples = read_text(dir, kConversation, options);
            const std::string text = text_of(examples[0]);
            const TrainingSequences s =
                build_training_sequences(examples, tokenizer, options, eos, eos);
            ASSERT_EQ(s.rows, 1);
            // The special tokens before the text (BOS), the whole text's tokens, EOS.
            const std::vector<int32_t> special = as_int32(tokenizer.encode(text, true));
            const std::vector<int32_t> plain_ids = as_int32(tokenizer.encode(text, false));
            const size_t prefix = static_cast<size_t>(
                std::search(special.begin(), special.end(), plain_ids.begin(), plain_ids.end()) -
                special.begin());
            ASSERT_LT(prefix, special.size());
            std::vector<int32_t> want(special.begin(), special.begin() + prefix);
            want.insert(want.end(), plain_ids.begin(), plain_ids.end());
            want.push_back(eos);
            ASSERT_LE(want.size(), 256u);
            const std::vector<int32_t> got = row(s, s.ids, 0);
            EXPECT_EQ(std::vector<int32_t>(got.begin(), got.begin() + want.size()), want);
            EXPECT_EQ(
                tokenizer.decode({got.begin() + prefix, got.begin() + want.size() - 1}, false),
                tokenizer.decode({plain_ids.begin(), plain_ids.end()}, false));
            EXPECT_EQ(s.tokens, static_cast<int64_t>(want.size()));
        }
    }
    // What the context avoids: each part encoded on its own starts a new "▁" word.
    const hf::Tokenizer mixtral = tokenizer_named("mixtral");
    const auto examples = read_text(dir, kConversation);
    std::vector<int> naive;
    for (const auto& part : examples[0].parts) {
        const std::vector<int> ids = mixtral.encode(part.text, false);
        naive.insert(naive.end(), ids.begin(), ids.end());
    }
    EXPECT_NE(naive, mixtral.encode(text_of(examples[0]), false));
}

TEST(InstructionData, BosFirstWhereTheTokenizerAddsOneAndEosAfterEachExample) {
    const std::vector<InstructionExample> examples = {plain("the cat"), plain("a hat")};
    InstructionDataOptions options;
    options.pack = false;
    options.seq_len = 16;
    // Llama-style: the post-processor puts <s> first.
    const hf::Tokenizer mixtral = tokenizer_named("mixtral");
    const int32_t bos = id_of(mixtral, "<s>"), eos = id_of(mixtral, "</s>");
    TrainingSequences s = build_training_sequences(examples, mixtral, options, eos, eos);
    ASSERT_EQ(s.rows, 2);
    for (int64_t r = 0; r < 2; ++r) {
        const std::vector<int32_t> ids = row(s, s.ids, r);
        std::vector<int32_t> want = {bos};
        const auto text =
            as_int32(mixtral.encode(examples[static_cast<size_t>(r)].parts[0].text, false));
        want.insert(want.end(), text.begin(), text.end());
        want.push_back(eos);
        EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + want.size()), want);
    }
    // The same from a tokenizer folder whose tokenizer_config.json names <s> and </s>.
    const hf::Tokenizer folder = hf::Tokenizer::load(fixtures() / "lm-eval/olmoe_tokenizer");
    ASSERT_TRUE(folder.bos_id().has_value());
    s = build_training_sequences({plain("the")}, folder, options, 2, 0);
    EXPECT_EQ(s.ids[0], *folder.bos_id());
    EXPECT_EQ(s.ids[1 + folder.encode("the", false).size()], 2);
    // Byte-level Qwen2: no BOS, the text first.
    const hf::Tokenizer qwen = tokenizer_named("qwen2");
    const int32_t endoftext = id_of(qwen, "<|endoftext|>");
    s = build_training_sequences(examples, qwen, options, endoftext, endoftext);
    const auto text = as_int32(qwen.encode("the cat", false));
    std::vector<int32_t> want = text;
    want.push_back(endoftext);
    const std::vector<int32_t> ids = row(s, s.ids, 0);
    EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + want.size()), want);
}

TEST(InstructionData, LabelsOnResponsesOrOnAll) {
    TempDir dir;
    const hf::Tokenizer qwen = tokenizer_named("qwen2");
    const int32_t eos = id_of(qwen, "<|endoftext|>");
    const int32_t pad = id_of(qwen, "<|im_start|>");
    InstructionDataOptions options;
    options.template_name = "chatml";
    options.pack = false;
    options.seq_len = 200;
    const auto examples = read_text(dir, kConversation, options);

    options.loss_on = LossOn::Responses;
    const TrainingSequences responses = build_training_sequences(examples, qwen, options, eos, pad);
    options.loss_on = LossOn::All;
    const TrainingSequences all = build_training_sequences(examples, qwen, options, eos, pad);
    ASSERT_EQ(responses.ids, all.ids);
    std::vector<int> trained, prompt;
    size_t real = 0;
    for (size_t i = 0; i < all.ids.size(); ++i) {
        const bool is_pad = all.labels[i] == kIgnoreLabel;
        if (!is_pad) {
            ++real;
            EXPECT_EQ(all.labels[i], all.ids[i]) << i;
        }
        if (responses.labels[i] == kIgnoreLabel) {
            if (!is_pad) prompt.push_back(responses.ids[i]);
        } else {
            EXPECT_EQ(responses.labels[i], responses.ids[i]) << i;
            trained.push_back(responses.ids[i]);
        }
    }
    EXPECT_EQ(real, static_cast<size_t>(all.tokens));
    // The responses with their <|im_end|>, and the EOS; everything else is prompt.
    ASSERT_FALSE(trained.empty());
    EXPECT_EQ(trained.back(), eos);
    trained.pop_back();
    EXPECT_EQ(qwen.decode(trained, false), "Blue.<|im_end|>Red, then.<|im_end|>");
    EXPECT_EQ(qwen.decode(prompt, false),
              "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nName a "
              "colour.<|im_end|>\n<|im_start|>assistant\n\n<|im_start|>user\nAnother?<|im_end|>\n"
              "<|im_start|>assistant\n\n");
}

TEST(InstructionData, EosCarriesLossOnlyAfterAResponse) {
    TempDir dir;
    const hf::Tokenizer mixtral = tokenizer_named("mixtral");
    const int32_t bos = id_of(mixtral, "<s>"), eos = id_of(mixtral, "</s>");
    InstructionDataOptions options;
    options.loss_on = LossOn::Responses;
    options.pack = false;
    options.seq_len = 64;
    const auto examples = read_text(
        dir,
        R"({"conversations": [{"from": "human", "value": "A"}, {"from": "gpt", "value": "B"}]})"
        "\n"
        R"({"conversations": [{"from": "human", "value": "A"}, {"from": "gpt", "value": "B"},)"
        R"( {"from": "human", "value": "C"}]})"
        "\n"
        R"({"text": "plain"})");
    const TrainingSequences s = build_training_sequences(examples, mixtral, options, eos, 0);
    ASSERT_EQ(s.rows, 3);
    for (int64_t r = 0; r < 3; ++r) {
        const std::vector<int32_t> ids = row(s, s.ids, r), labels = row(s, s.labels, r);
        EXPECT_EQ(ids[0], bos);
        EXPECT_EQ(labels[0], kIgnoreLabel);  // BOS is prompt
        const size_t end =
            static_cast<size_t>(std::find(ids.begin(), ids.end(), eos) - ids.begin());
        ASSERT_LT(end, ids.size());
        EXPECT_EQ(labels[end], r == 1 ? kIgnoreLabel : eos) << r;
        EXPECT_TRUE(std::all_of(labels.begin() + end + 1, labels.end(),
                                [](int32_t l) { return l == kIgnoreLabel; }));
    }
    // Plain text: every token but the BOS trains.
    const std::vector<int32_t> ids = row(s, s.ids, 2), labels = row(s, s.labels, 2);
    const size_t n = mixtral.encode("plain", false).size() + 2;
    EXPECT_EQ(std::vector<int32_t>(labels.begin() + 1, labels.begin() + n),
              std::vector<int32_t>(ids.begin() + 1, ids.begin() + n));
}

// ---- packing and padding ----

TEST(InstructionData, PackingRunsExamplesOnAndDropsThePartialLastRow) {
    const hf::Tokenizer qwen = tokenizer_named("qwen2");
    const int32_t eos = id_of(qwen, "<|endoftext|>");
    std::vector<InstructionExample> examples;
    for (const char* text : {"The quick brown fox", "jumps over", "the lazy dog.", "Again!"}) {
        examples.push_back(plain(text));
    }
    std::vector<int32_t> stream;
    for (const auto& example : examples) {
        const auto ids = as_int32(qwen.encode(example.parts[0].text, false));
        stream.insert(stream.end(), ids.begin(), ids.end());
        stream.push_back(eos);
    }
    const auto total = static_cast<int64_t>(stream.size());
    InstructionDataOptions options;
    options.seq_len = 7;
    ASSERT_GT(total % options.seq_len, 0) << "the fixture should leave a partial row";
    const TrainingSequences s = build_training_sequences(examples, qwen, options, eos, -1);
    EXPECT_EQ(s.seq_len, 7);
    EXPECT_EQ(s.rows, total / 7);
    EXPECT_EQ(s.examples, 4);
    EXPECT_EQ(s.tokens, total);
    EXPECT_EQ(s.dropped_tokens, total % 7);
    EXPECT_EQ(s.truncated, 0);
    stream.resize(static_cast<size_t>(s.rows * 7));
    EXPECT_EQ(s.ids, stream);
    EXPECT_EQ(s.labels, stream);  // LossOn::All, no padding
    // An exact multiple drops nothing.
    InstructionDataOptions whole = options;
    whole.seq_len = total;
    const TrainingSequences one = build_training_sequences(examples, qwen, whole, eos, -1);
    EXPECT_EQ(one.rows, 1);
    EXPECT_EQ(one.dropped_tokens, 0);
    // One token too many for the data: no full row.
    whole.seq_len = total + 1;
    const std::string message =
        error_message([&] { build_training_sequences(examples, qwen, whole, eos, -1); });
    EXPECT_NE(message.find(std::to_string(total) + " tokens"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(total + 1)), std::string::npos) << message;
}

TEST(InstructionData, PaddingPutsOneExamplePerRowAndTruncates) {
    const hf::Tokenizer qwen = tokenizer_named("qwen2");
    const int32_t eos = id_of(qwen, "<|endoftext|>"), pad = id_of(qwen, "<|im_start|>");
    const std::vector<InstructionExample> examples = {plain("Hi."),
                                                      plain("a rather longer text than the row")};
    const auto short_ids = as_int32(qwen.encode("Hi.", false));
    const auto long_ids = as_int32(qwen.encode(examples[1].parts[0].text, false));
    InstructionDataOptions options;
    options.pack = false;
    options.seq_len = static_cast<int64_t>(short_ids.size()) + 3;
    ASSERT_GT(long_ids.size() + 1, static_cast<size_t>(options.seq_len));
    const TrainingSequences s = build_training_sequences(examples, qwen, options, eos, pad);
    ASSERT_EQ(s.rows, 2);
    EXPECT_EQ(s.truncated, 1);
    EXPECT_EQ(s.tokens, static_cast<int64_t>(short_ids.size() + long_ids.size() + 2));
    std::vector<int32_t> want = short_ids;
    want.push_back(eos);
    want.push_back(pad);
    want.push_back(pad);
    EXPECT_EQ(row(s, s.ids, 0), want);
    std::vector<int32_t> want_labels(want.begin(), want.end() - 2);
    want_labels.push_back(kIgnoreLabel);
    want_labels.push_back(kIgnoreLabel);
    EXPECT_EQ(row(s, s.labels, 0), want_labels);
    // Cut at seq_len: the end of the text and its EOS are gone.
    const std::vector<int32_t> cut(long_ids.begin(), long_ids.begin() + options.seq_len);
    EXPECT_EQ(row(s, s.ids, 1), cut);
    EXPECT_EQ(row(s, s.labels, 1), cut);
}

TEST(InstructionData, ExampleTruncatedToPromptStillCounts) {
    TempDir dir;
    const hf::Tokenizer qwen = tokenizer_named("qwen2");
    const int32_t eos = id_of(qwen, "<|endoftext|>");
    InstructionDataOptions options;
    options.pack = false;
    options.seq_len = 3;
    options.loss_on = LossOn::Responses;
    const auto examples =
        read_text(dir, R"({"instruction": "A long instruction here", "output": "Yes"})");
    const TrainingSequences s = build_training_sequences(examples, qwen, options, eos, eos);
    EXPECT_EQ(s.rows, 1);
    EXPECT_EQ(s.examples, 1);
    EXPECT_EQ(s.truncated, 1);
    EXPECT_EQ(s.labels, std::vector<int32_t>(3, kIgnoreLabel));
}

TEST(InstructionData, SameInputSameSequences) {
    TempDir dir;
    const hf::Tokenizer qwen = tokenizer_named("qwen2");
    std::string text;
    for (int i = 0; i < 50; ++i) text += std::string(kConversation) + "\n";
    InstructionDataOptions options;
    options.seq_len = 32;
    options.loss_on = LossOn::Responses;
    const auto examples = read_text(dir, text, options);
    const TrainingSequences a = build_training_sequences(examples, qwen, options, 0, 0);
    testing::ScopedThreads threads(3);
    const TrainingSequences b = build_training_sequences(examples, qwen, options, 0, 0);
    EXPECT_EQ(a.ids, b.ids);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.rows, a.tokens / 32);
}

// ---- errors ----

TEST(InstructionData, MalformedJsonNamesFileAndLine) {
    TempDir dir;
    const std::string message = error_message([&] {
        read_text(dir, std::string(kConversation) + "\n\n" + R"({"text": "unclosed)" + "\n");
    });
    EXPECT_NE(message.find("data.jsonl:3:"), std::string::npos) << message;
    EXPECT_NE(message.find("not a JSON line"), std::string::npos) << message;
    // A JSON array file, as OpenHermes-2.5 ships openhermes2_5.json.
    const std::string array = error_message([&] { read_text(dir, "[\n  {\"text\": \"a\"}\n]\n"); });
    EXPECT_NE(array.find("data.jsonl:1:"), std::string::npos) << array;
    EXPECT_NE(array.find("jq -c"), std::string::npos) << array;
    const std::string one_line = error_message([&] { read_text(dir, "[{\"text\": \"a\"}]\n"); });
    EXPECT_NE(one_line.find("data.jsonl:1: a record must be a JSON object, not array"),
              std::string::npos)
        << one_line;
    EXPECT_NE(one_line.find("jq -c"), std::string::npos) << one_line;
    const std::string scalar = error_message([&] { read_text(dir, "42\n"); });
    EXPECT_NE(scalar.find("data.jsonl:1: a record must be a JSON object, not number"),
              std::string::npos)
        << scalar;
}

TEST(InstructionData, MissingFieldIsNamed) {
    TempDir dir;
    std::string message = error_message([&] { read_text(dir, R"({"prompt": "x"})"); });
    EXPECT_NE(message.find("data.jsonl:1:"), std::string::npos) << message;
    EXPECT_NE(message.find("\"text\""), std::string::npos) << message;
    EXPECT_NE(message.find("\"prompt\""), std::string::npos) << message;  // what it has
    message =
        error_message([&] { read_text(dir, "{\"text\": \"ok\"}\n{\"instruction\": \"x\"}"); });
    EXPECT_NE(message.find("data.jsonl:2:"), std::string::npos) << message;
    EXPECT_NE(message.find("\"output\""), std::string::npos) << message;
    message = error_message(
        [&] { read_text(dir, R"({"conversations": [{"from": "gpt", "text": "x"}]})"); });
    EXPECT_NE(message.find("data.jsonl:1: conversations[0].value is missing"), std::string::npos)
        << message;
    message = error_message(
        [&] { read_text(dir, R"({"conversations": [{"from": "gpt", "value": 3}]})"); });
    EXPECT_NE(message.find("conversations[0].value must be a string, not number"),
              std::string::npos)
        << message;
    message = error_message([&] { read_text(dir, R"({"conversations": []})"); });
    EXPECT_NE(message.find("non-empty array"), std::string::npos) << message;
    message = error_message([&] { read_text(dir, R"({"text": null})"); });
    EXPECT_NE(message.find("\"text\" must be a string, not null"), std::string::npos) << message;
}

TEST(InstructionData, UnknownRoleListsTheAcceptedOnes) {
    TempDir dir;
    const std::string message = error_message([&] {
        read_text(dir, std::string(kConversation) + "\n" +
                           R"({"conversations": [{"from": "human", "value": "x"},)"
                           R"( {"from": "tool", "value": "y"}]})");
    });
    EXPECT_NE(message.find("data.jsonl:2: conversations[1].from is \"tool\""), std::string::npos)
        << message;
    for (const char* role : {"system", "human", "gpt", "user", "assistant"}) {
        EXPECT_NE(message.find(std::string("\"") + role + "\""), std::string::npos) << role;
    }
}

TEST(InstructionData, UnknownTemplateIsAUsageError) {
    TempDir dir;
    const fs::path path = dir / "data.jsonl";
    write_text_file(path, kConversation);
    InstructionDataOptions options;
    options.template_name = "alpaca";
    try {
        read_instruction_file(path, options);
        ADD_FAILURE() << "expected UsageError";
    } catch (const UsageError& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("\"alpaca\""), std::string::npos) << message;
        EXPECT_NE(message.find("instruction-response, chatml"), std::string::npos) << message;
    }
}

TEST(InstructionData, EmptyFileFails) {
    TempDir dir;
    for (const char* text : {"", "\n  \n\r\n"}) {
        const std::string message = error_message([&] { read_text(dir, text); });
        EXPECT_NE(message.find("data.jsonl: no records"), std::string::npos) << message;
    }
    const std::string missing =
        error_message([&] { read_instruction_file(dir / "absent.jsonl", {}); });
    EXPECT_NE(missing.find("absent.jsonl"), std::string::npos) << missing;
}

TEST(InstructionData, BadSequenceOptionsFail) {
    const hf::Tokenizer qwen = tokenizer_named("qwen2");
    InstructionDataOptions options;
    options.seq_len = 0;
    EXPECT_THROW(build_training_sequences({plain("x")}, qwen, options, 0, 0), UsageError);
    options.seq_len = 8;
    EXPECT_NE(error_message([&] { build_training_sequences({}, qwen, options, 0, 0); }), "");
    const std::string eos =
        error_message([&] { build_training_sequences({plain("x")}, qwen, options, -1, 0); });
    EXPECT_NE(eos.find("EOS id -1"), std::string::npos) << eos;
    options.pack = false;
    const std::string pad = error_message(
        [&] { build_training_sequences({plain("x")}, qwen, options, 0, qwen.vocab_size()); });
    EXPECT_NE(pad.find("pad id"), std::string::npos) << pad;
}

}  // namespace
}  // namespace greenmoe::lora

// Tests of the Hugging Face tokenizer.json reader: ids and decoded text exactly as the
// `tokenizers` library gives them (shared cases and fixtures made with it), a byte-level BPE
// built from GPT-2's files against greenmoe's GPT-2 tokenizer on whole corpora, and errors
// for what it cannot reproduce.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/hf_tokenizer.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::error_message;
using testing::read_text_file;
using testing::TempDir;
using testing::write_text_file;

json read_json_file(const fs::path& path) {
    return json::parse(read_text_file(path));
}

// Runs every case of a cases file ({name: {"tokenizer": file, "cases": […]}}). Returns the
// number of cases checked.
int check_cases_file(const fs::path& cases_path) {
    const json all = read_json_file(cases_path);
    int checked = 0;
    for (const auto& [name, entry] : all.items()) {
        SCOPED_TRACE(name);
        const fs::path file = cases_path.parent_path() / entry.at("tokenizer").get<std::string>();
        const hf::Tokenizer tokenizer = hf::Tokenizer::load(file);
        for (const json& c : entry.at("cases")) {
            const std::string text = c.at("text").get<std::string>();
            SCOPED_TRACE(text);
            const std::vector<int> ids = tokenizer.encode(text);
            EXPECT_EQ(ids, c.at("ids").get<std::vector<int>>());
            EXPECT_EQ(tokenizer.decode(c.at("ids").get<std::vector<int>>(), true),
                      c.at("decoded").get<std::string>());
            if (c.contains("decoded_with_special")) {
                EXPECT_EQ(tokenizer.decode(c.at("ids").get<std::vector<int>>(), false),
                          c.at("decoded_with_special").get<std::string>());
            }
            if (c.contains("tokens")) {
                const hf::Tokenizer::Encoding encoding = tokenizer.encode_with_tokens(text);
                EXPECT_EQ(encoding.ids, ids);
                EXPECT_EQ(encoding.tokens, c.at("tokens").get<std::vector<std::string>>());
            }
            ++checked;
        }
    }
    return checked;
}

TEST(HfTokenizer, SharedCasesExact) {
    const int checked =
        check_cases_file(testing::shared_data() / "hf-tokenizers" / "hf_tokenizer_cases.json");
    EXPECT_GE(checked, 120);  // BPE of every kind, WordPiece and Unigram
}

TEST(HfTokenizer, FixtureCasesExact) {
    const fs::path cases =
        fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/hf-tokenizers/cases.json";
    if (!fs::exists(cases)) GTEST_SKIP() << "no " << cases;
    EXPECT_GT(check_cases_file(cases), 100);
}

// GPT-2's files written as a tokenizer.json, the way Hugging Face ships GPT-2.
json gpt2_tokenizer_json() {
    const fs::path dir = testing::tokenizer_dir();
    json merges = json::array();
    std::istringstream lines(read_text_file(dir / "vocab.bpe"));
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line.starts_with("#version")) continue;
        const size_t space = line.find(' ');
        merges.push_back(json::array({line.substr(0, space), line.substr(space + 1)}));
    }
    json t;
    t["version"] = "1.0";
    t["truncation"] = nullptr;
    t["padding"] = nullptr;
    t["added_tokens"] = json::array({{{"id", 50256},
                                      {"content", "<|endoftext|>"},
                                      {"single_word", false},
                                      {"lstrip", false},
                                      {"rstrip", false},
                                      {"normalized", true},
                                      {"special", true}}});
    t["normalizer"] = nullptr;
    t["pre_tokenizer"] = {{"type", "ByteLevel"},
                          {"add_prefix_space", false},
                          {"trim_offsets", true},
                          {"use_regex", true}};
    t["post_processor"] = {{"type", "ByteLevel"},
                           {"add_prefix_space", true},
                           {"trim_offsets", false},
                           {"use_regex", true}};
    t["decoder"] = {{"type", "ByteLevel"},
                    {"add_prefix_space", true},
                    {"trim_offsets", true},
                    {"use_regex", true}};
    t["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"vocab", read_json_file(dir / "encoder.json")},
                  {"merges", merges}};
    return t;
}

TEST(HfTokenizer, ByteLevelBpeFromGpt2FilesMatchesGpt2TokenizerOnCorpora) {
    const Gpt2Tokenizer gpt2 = Gpt2Tokenizer::load(testing::tokenizer_dir());
    const hf::Tokenizer hf_tok = hf::Tokenizer::from_json(gpt2_tokenizer_json(), "gpt2.json");
    EXPECT_EQ(hf_tok.vocab_size(), 50257);
    for (const char* name : {"tinyshakespeare.txt", "corpus_en.txt", "tinystories_sample.txt"}) {
        SCOPED_TRACE(name);
        const std::string text = read_text_file(testing::shared_data() / "text" / name);
        const std::vector<int> expected = gpt2.encode(text, /*allow_special=*/true);
        hf::BpeCache cache;
        const std::vector<int> ids = hf_tok.encode(text, true, &cache);
        ASSERT_EQ(ids.size(), expected.size());
        EXPECT_EQ(ids, expected);
        EXPECT_EQ(hf_tok.decode(ids, false), text);
    }
    // The published vectors (shared/data/README.md).
    EXPECT_EQ(hf_tok.encode("hello <|endoftext|>"), (std::vector<int>{31373, 220, 50256}));
    EXPECT_EQ(hf_tok.encode("Führer"), (std::vector<int>{37, 9116, 71, 11751}));
    EXPECT_EQ(hf_tok.encode(" discards"), (std::vector<int>{1221, 1371}));
}

TEST(HfTokenizer, BatchEqualsOneByOne) {
    const hf::Tokenizer tok = hf::Tokenizer::load(
        testing::shared_data() / "hf-tokenizers/tiny_bpe_split_qwen2_tokenizer.json");
    const std::string text = read_text_file(testing::shared_data() / "text" / "corpus_en.txt");
    std::vector<std::string_view> lines;
    for (size_t at = 0; at < text.size();) {
        const size_t end = std::min(text.find('\n', at), text.size());
        lines.push_back(std::string_view(text).substr(at, end + 1 - at));
        at = end + 1;
    }
    testing::ScopedThreads threads(2);
    const auto batch = tok.encode_batch(lines);
    ASSERT_EQ(batch.size(), lines.size());
    for (size_t i = 0; i < lines.size(); ++i) ASSERT_EQ(batch[i], tok.encode(lines[i])) << i;
}

TEST(HfTokenizer, IllFormedUtf8IsReplacedLikeALossyDecode) {
    const hf::Tokenizer tok = hf::Tokenizer::load(
        testing::shared_data() / "hf-tokenizers/tiny_bpe_bytelevel_tokenizer.json");
    // A stray continuation byte, a truncated 3-byte sequence, an overlong form, a surrogate.
    const std::string bad =
        "a\x80"
        "b\xE2\x82"
        "c\xC0\xAF"
        "d\xED\xA0\x80"
        "e";
    const std::string replaced =
        "a\uFFFD"
        "b\uFFFD"
        "c\uFFFD\uFFFD"
        "d\uFFFD\uFFFD\uFFFD"
        "e";
    EXPECT_EQ(hf::to_valid_utf8(bad), replaced);
    EXPECT_EQ(tok.encode(bad), tok.encode(replaced));
}

hf::Tokenizer from_text(const std::string& text) {
    return hf::Tokenizer::from_json(json::parse(text), "t.json");
}

const char* kTinyModel =
    R"("model": {"type": "BPE", "dropout": null, "unk_token": null, "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";

TEST(HfTokenizer, TokenizerConfigAddsBosAsTransformersDoes) {
    TempDir dir;
    write_text_file(
        dir / "tokenizer.json",
        std::string("{") + kTinyModel +
            R"(, "added_tokens": [{"id": 3, "content": "<s>", "special": true, "normalized": false},
                                              {"id": 4, "content": "</s>", "special": true, "normalized": false}],
                           "post_processor": null})");
    EXPECT_EQ(hf::Tokenizer::load(dir.path()).encode("ab"), (std::vector<int>{2}));
    write_text_file(dir / "tokenizer_config.json",
                    R"({"tokenizer_class": "LlamaTokenizerFast", "bos_token": {"content": "<s>"},
                        "eos_token": "</s>", "add_eos_token": true})");
    const hf::Tokenizer llama = hf::Tokenizer::load(dir.path());
    EXPECT_EQ(llama.encode("ab"), (std::vector<int>{3, 2, 4}));
    EXPECT_EQ(llama.encode("ab", /*add_special_tokens=*/false), (std::vector<int>{2}));
    EXPECT_EQ(llama.bos_id(), 3);
    EXPECT_EQ(llama.eos_id(), 4);
    EXPECT_EQ(llama.decode({3, 2, 4}, true), "ab");
}

TEST(HfTokenizer, AnUnknownModelTypeIsRefusedWithPathAndType) {
    const std::string message = error_message([] {
        from_text(R"({"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}})");
    });
    EXPECT_NE(message.find("t.json: /model: unsupported model type \"WordLevel\" (greenmoe "
                           "supports BPE, WordPiece and Unigram)"),
              std::string::npos)
        << message;
}

TEST(HfTokenizer, MalformedFilesAreRefusedWithPathAndReason) {
    TempDir dir;
    write_text_file(dir / "tokenizer.json", "{\"model\": ");
    EXPECT_NE(error_message([&] { hf::Tokenizer::load(dir.path()); }).find("not valid JSON"),
              std::string::npos);
    EXPECT_NE(
        error_message([&] { hf::Tokenizer::load(dir / "missing"); }).find("no tokenizer.json"),
        std::string::npos);

    EXPECT_NE(
        error_message([] {
            from_text(
                R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}})");
        }).find("t.json: /model/merges/0: merge names \"c\", which is not in the vocabulary"),
        std::string::npos);
    EXPECT_NE(
        error_message([] {
            from_text(
                R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}})");
        }).find("\"ab\", which is not in the vocabulary"),
        std::string::npos);
    EXPECT_NE(error_message([] {
                  from_text(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a  b"]}})");
              }).find("with one space"),
              std::string::npos);
    EXPECT_NE(
        error_message([] {
            from_text(std::string("{") + kTinyModel + R"(, "normalizer": {"type": "Sequence",
                      "normalizers": [{"type": "NFC"}, {"type": "Precompiled", "precompiled_charsmap": ""}]}})");
        }).find("t.json: /normalizer/normalizers/1: unsupported normalizer type \"Precompiled\""),
        std::string::npos);
    EXPECT_NE(error_message([] {
                  from_text(std::string("{") + kTinyModel +
                            R"(, "pre_tokenizer": {"type": "UnicodeScripts"}})");
              }).find("unsupported pre-tokenizer type \"UnicodeScripts\""),
              std::string::npos);
    EXPECT_NE(error_message([] {
                  from_text(std::string("{") + kTinyModel + R"(, "decoder": {"type": "CTC"}})");
              }).find("unsupported decoder type \"CTC\""),
              std::string::npos);
    EXPECT_NE(
        error_message([] {
            from_text(std::string("{") + kTinyModel + R"(, "pre_tokenizer": {"type": "Split",
                      "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}})");
        })
            .find("t.json: /pre_tokenizer/pattern: the regular expression \"(unclosed\" is not one "
                  "Oniguruma accepts"),
        std::string::npos);
    EXPECT_NE(
        error_message([] {
            from_text(R"({"model": {"type": "BPE", "dropout": 0.1, "vocab": {}, "merges": []}})");
        }).find("dropout must be null"),
        std::string::npos);
    EXPECT_NE(error_message([] {
                  from_text(std::string("{") + kTinyModel + R"(, "pre_tokenizer": {"type": "Split",
                      "pattern": {"Regex": "a"}, "behavior": "Sideways"}})");
              }).find("unknown split behavior \"Sideways\""),
              std::string::npos);
    EXPECT_NE(error_message([] {
                  from_text(R"({"model": {"type": "BPE", "vocab": [], "merges": []}})");
              }).find("t.json: /model/vocab: expected an object"),
              std::string::npos);
    EXPECT_NE(error_message([] {
                  from_text(std::string("{") + kTinyModel + "}").decode({7});
              }).find("no token has id 7"),
              std::string::npos);
}

}  // namespace
}  // namespace greenmoe

namespace greenmoe {
namespace {

// Real tokenizer.json files damaged at random, as text (truncations, byte flips) and as JSON
// (a value of another type or content put anywhere, a key removed): each either loads, and
// then encodes and decodes, or is refused with greenmoe::Error; nothing else may escape.
json random_value(std::mt19937& rng) {
    switch (rng() % 8) {
        case 0:
            return nullptr;
        case 1:
            return static_cast<int>(rng() % 1000) - 10;
        case 2:
            return 1e300;
        case 3:
            return json::array({"a", "b"});
        case 4:
            return json::object({{"type", "Sequence"}});
        case 5:
            return "(?<";
        case 6:
            return true;
        default:
            return "";
    }
}

bool survives(const json& parsed, const std::string& name) {
    try {
        const hf::Tokenizer tok = hf::Tokenizer::from_json(parsed, name);
        const std::vector<int> ids = tok.encode("Hello, world! caf\u00e9 12345 <s>x\n\n  y");
        (void)tok.decode(ids, false);
        return true;
    } catch (const Error&) {
        return false;
    }
}

TEST(HfTokenizer, DamagedFilesLoadOrFailCleanly) {
    std::mt19937 rng(1234);
    int refused = 0, loaded = 0;
    for (const char* name :
         {"tiny_bpe_metaspace_tokenizer.json", "tiny_bpe_split_deepseek_tokenizer.json",
          "tiny_bpe_digits_bytelevel_tokenizer.json", "tiny_wordpiece_tokenizer.json",
          "tiny_unigram_tokenizer.json"}) {
        const std::string original =
            read_text_file(testing::shared_data() / "hf-tokenizers" / name);
        for (int trial = 0; trial < 60; ++trial) {  // as text
            std::string damaged = original;
            if (trial % 2 == 0) {
                damaged.resize(rng() % damaged.size());
            } else {
                damaged[rng() % damaged.size()] = static_cast<char>(rng() % 256);
            }
            const json parsed = json::parse(damaged, nullptr, false);
            if (!parsed.is_discarded()) (survives(parsed, name) ? loaded : refused)++;
        }
        const json tree = json::parse(original);
        std::vector<std::string> paths;  // every value but the bulk of vocab and merges
        const json flat = tree.flatten();
        for (const auto& [path, leaf] : flat.items()) {
            if (!path.starts_with("/model/vocab/") && !path.starts_with("/model/merges/")) {
                paths.push_back(path);
            }
        }
        paths.push_back("/model/vocab/a");
        paths.push_back("/model/merges/3");
        for (int trial = 0; trial < 300; ++trial) {  // as JSON
            json damaged = tree;
            json::json_pointer at(paths[rng() % paths.size()]);
            for (int up = static_cast<int>(rng() % 3); up > 0 && !at.empty(); --up) {
                at = at.parent_pointer();
            }
            try {
                if (rng() % 4 == 0 && !at.empty()) {
                    json& parent = damaged[at.parent_pointer()];
                    if (parent.is_object()) parent.erase(at.back());
                } else {
                    damaged[at] = random_value(rng);
                }
            } catch (const json::exception&) {
                continue;  // a path this file does not have (vocab as an array, say)
            }
            (survives(damaged, name) ? loaded : refused)++;
        }
    }
    EXPECT_GT(refused, 100);
    EXPECT_GT(loaded, 100);
}

}  // namespace
}  // namespace greenmoe

// Tests of what is built on the Hugging Face tokenizer reader: 32-bit token shards, `prepare`
// with a model's tokenizer (delimiters, uint32 when the vocabulary needs it) and the
// `tokenize` command.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/io/token_shard.h"
#include "greenmoe/text/hf_tokenizer.h"
#include "greenmoe/text/prepare.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::error_message;
using testing::read_text_file;
using testing::run_command;
using testing::TempDir;
using testing::write_text_file;

fs::path shared_tokenizer(const std::string& name) {
    return testing::shared_data() / "hf-tokenizers" / ("tiny_" + name + "_tokenizer.json");
}

TEST(HfTokenShards, Uint32ShardRoundTripsAndRefusesTheUint16View) {
    TempDir dir;
    std::vector<uint32_t> tokens;
    for (uint32_t i = 0; i < 1000; ++i) tokens.push_back(i * 150001u % 151936u);
    write_token_shard(dir / "wide.bin", tokens.data(), tokens.size());
    EXPECT_EQ(fs::file_size(dir / "wide.bin"), 1024u + 4000u);
    const std::string raw = read_text_file(dir / "wide.bin");
    int32_t header[3];
    std::memcpy(header, raw.data(), sizeof header);
    EXPECT_EQ(header[0], 20240801);  // llm.c's header for uint32 tokens
    EXPECT_EQ(header[1], 7);
    EXPECT_EQ(header[2], 1000);
    const TokenShard shard = TokenShard::open(dir / "wide.bin");
    ASSERT_TRUE(shard.wide());
    EXPECT_EQ(std::vector<uint32_t>(shard.tokens32(), shard.tokens32() + shard.size()), tokens);
    EXPECT_EQ(shard.token(999), tokens[999]);
    EXPECT_NE(error_message([&] { (void)shard.tokens(); }).find("32-bit token ids"),
              std::string::npos);

    // A truncated wide shard names the 4 bytes per token.
    write_text_file(dir / "cut.bin", raw.substr(0, raw.size() - 3));
    EXPECT_NE(error_message([&] { TokenShard::open(dir / "cut.bin"); }).find("+ 4 bytes per token"),
              std::string::npos);
}

class HfPrepare : public ::testing::Test {
  protected:
    PrepareOptions options() const {
        PrepareOptions o;
        o.inputs = {dir_ / "docs.jsonl"};
        o.out_dir = dir_ / "out";
        o.name = "hf";
        o.shard_tokens = 40;
        o.val_tokens = 16;
        o.show_progress = false;
        return o;
    }
    void SetUp() override {
        std::string jsonl;
        for (const char* d : {"Hello world, the cat sat.", "café 42 🚀!", "Don't stop, don't.",
                              "numbers 12345 and 3.14 in text", "last one"}) {
            jsonl += json{{"text", d}}.dump() + "\n";
            docs_.push_back(d);
        }
        write_text_file(dir_ / "docs.jsonl", jsonl);
    }
    std::vector<uint32_t> all_tokens(const PrepareResult& r) const {
        std::vector<uint32_t> all;
        auto paths = r.val_shards;
        paths.insert(paths.end(), r.train_shards.begin(), r.train_shards.end());
        for (const auto& p : paths) {
            const TokenShard s = TokenShard::open(p);
            for (size_t i = 0; i < s.size(); ++i) all.push_back(s.token(i));
        }
        return all;
    }
    TempDir dir_;
    std::vector<std::string> docs_;
};

TEST_F(HfPrepare, EachDocumentFollowsTheDelimiterInSixteenBitShards) {
    const hf::Tokenizer tok = hf::Tokenizer::load(shared_tokenizer("bpe_split_qwen2"));
    const auto encoder = make_document_encoder(tok);  // no bos/eos: <|endoftext|>
    const PrepareResult r = prepare_shards(options(), *encoder);
    std::vector<uint32_t> expected;
    for (const auto& d : docs_) {
        expected.push_back(*tok.token_to_id("<|endoftext|>"));
        for (const int id : tok.encode(d, false)) expected.push_back(static_cast<uint32_t>(id));
    }
    EXPECT_EQ(all_tokens(r), expected);
    EXPECT_FALSE(TokenShard::open(r.val_shards.at(0)).wide());
    const json meta = json::parse(read_text_file(dir_ / "out/prepare.json"));
    EXPECT_EQ(meta["tokenizer"]["name"], "huggingface");
    EXPECT_EQ(meta["tokenizer"]["document_delimiter"], "<|endoftext|> before every document");
}

TEST_F(HfPrepare, LargeVocabularyWritesUint32ShardsAndHonoursTheDelimiterOption) {
    // The tiny Qwen2-style tokenizer with one added token far up, as in Qwen's 151k vocabulary.
    json t = json::parse(read_text_file(shared_tokenizer("bpe_split_qwen2")));
    t["added_tokens"].push_back({{"id", 151643},
                                 {"content", "<|far|>"},
                                 {"single_word", false},
                                 {"lstrip", false},
                                 {"rstrip", false},
                                 {"normalized", false},
                                 {"special", true}});
    write_text_file(dir_ / "tokenizer.json", t.dump());
    const hf::Tokenizer tok = hf::Tokenizer::load(dir_.path());
    ASSERT_EQ(tok.vocab_size(), 151644);
    const auto encoder = make_document_encoder(tok, "<|far|>");
    const PrepareResult r = prepare_shards(options(), *encoder);
    std::vector<uint32_t> expected;
    for (const auto& d : docs_) {
        expected.push_back(151643);
        for (const int id : tok.encode(d, false)) expected.push_back(static_cast<uint32_t>(id));
    }
    EXPECT_EQ(all_tokens(r), expected);
    EXPECT_TRUE(TokenShard::open(r.train_shards.at(0)).wide());
    EXPECT_NE(error_message([&] {
                  make_document_encoder(tok, "<|nope|>");
              }).find("the document delimiter \"<|nope|>\" is not a token"),
              std::string::npos);
}

std::string bin() {
    return testing::greenmoe_binary().string();
}

TEST(HfTokenizeCommand, JsonOutputMatchesTheTokenizersLibrary) {
    const json cases = json::parse(
        read_text_file(testing::shared_data() / "hf-tokenizers/hf_tokenizer_cases.json"));
    const json& c = cases["metaspace"]["cases"][1];
    const auto r = run_command(bin() + " tokenize --json --tokenizer " +
                               shared_tokenizer("bpe_metaspace").string() + " '" +
                               c["text"].get<std::string>() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const json out = json::parse(r.output);
    EXPECT_EQ(out["ids"], c["ids"]);
    EXPECT_EQ(out["decoded"], c["decoded"]);
    EXPECT_EQ(out["tokens"].size(), c["ids"].size());

    const auto plain = run_command(bin() + " tokenize --tokenizer " +
                                   shared_tokenizer("bpe_split_qwen2").string() + " 'Hello world'");
    ASSERT_EQ(plain.exit_code, 0) << plain.output;
    EXPECT_NE(plain.output.find("8 tokens; decoded: \"Hello world\""), std::string::npos)
        << plain.output;
}

TEST(HfTokenizeCommand, AnUnsupportedTokenizerIsOneErrorNamingFileAndType) {
    TempDir dir;
    write_text_file(dir / "tokenizer.json",
                    R"({"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}})");
    const auto r =
        run_command(bin() + " tokenize --tokenizer " + dir.path().string() + " 'the cat'");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("greenmoe: error: " + (dir / "tokenizer.json").string() +
                            ": /model: unsupported model type \"WordLevel\""),
              std::string::npos)
        << r.output;
}

}  // namespace
}  // namespace greenmoe

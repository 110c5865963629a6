// Tests of prepare_shards: exact round trip through the shards, shard boundaries,
// compressed jsonl input, several inputs, stale shards, and a too-small corpus.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/io/token_shard.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/prepare.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::gzip;

namespace fs = std::filesystem;
using testing::read_text_file;
using testing::TempDir;
using testing::write_text_file;

class Prepare : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        tokenizer_ = std::make_unique<Gpt2Tokenizer>(
            Gpt2Tokenizer::load(greenmoe::testing::tokenizer_dir()));
    }
    static void TearDownTestSuite() { tokenizer_.reset(); }
    static const Gpt2Tokenizer& tok() { return *tokenizer_; }

    PrepareOptions options(std::vector<fs::path> inputs, size_t shard_tokens,
                           size_t val_tokens) const {
        PrepareOptions o;
        o.inputs = std::move(inputs);
        o.out_dir = dir_ / "out";
        o.name = "tiny";
        o.shard_tokens = shard_tokens;
        o.val_tokens = val_tokens;
        o.show_progress = false;
        return o;
    }

    // All tokens of the shards, val first, then train in order; checks each size.
    std::vector<int> read_shards(const PrepareResult& r, size_t shard_tokens) const {
        std::vector<int> all;
        std::vector<fs::path> paths = r.val_shards;
        paths.insert(paths.end(), r.train_shards.begin(), r.train_shards.end());
        for (size_t i = 0; i < paths.size(); ++i) {
            const auto shard = TokenShard::open(paths[i]);
            const bool is_val = i < r.val_shards.size();
            const bool is_last = i + 1 == paths.size();
            if (is_val) {
                EXPECT_EQ(shard.size(), r.val_tokens);
            } else if (!is_last) {
                EXPECT_EQ(shard.size(), shard_tokens) << paths[i];
            } else {
                EXPECT_GE(shard.size(), 1u);
                EXPECT_LE(shard.size(), shard_tokens);
            }
            all.insert(all.end(), shard.tokens(), shard.tokens() + shard.size());
        }
        return all;
    }

    static std::string delimited(const std::vector<std::string>& docs) {
        std::string text;
        for (const auto& d : docs) text += "<|endoftext|>" + d;
        return text;
    }

    TempDir dir_;

  private:
    static std::unique_ptr<Gpt2Tokenizer> tokenizer_;
};
std::unique_ptr<Gpt2Tokenizer> Prepare::tokenizer_;

TEST_F(Prepare, RoundTripAndShardBoundaries) {
    const auto stories = testing::shared_data() / "text/tinystories_sample.txt";
    const auto result = prepare_shards(options({stories}, 100, 64), tok());
    EXPECT_EQ(result.documents, 5u);
    EXPECT_EQ(result.val_tokens, 64u);
    ASSERT_EQ(result.val_shards.size(), 1u);
    EXPECT_EQ(result.val_shards[0].filename(), "tiny_val_000000.bin");
    EXPECT_EQ(result.train_shards[0].filename(), "tiny_train_000000.bin");
    EXPECT_EQ(result.train_shards[1].filename(), "tiny_train_000001.bin");
    EXPECT_EQ(result.train_shards.size(), (result.train_tokens + 99) / 100);

    const auto tokens = read_shards(result, 100);
    EXPECT_EQ(tokens.size(), result.val_tokens + result.train_tokens);
    EXPECT_EQ(tokens.front(), tok().eot_token());
    // The documents the reader finds, each behind an <|endoftext|>.
    const std::string text = read_text_file(stories);
    std::vector<std::string> docs;
    for (size_t start = 0;;) {
        const size_t at = text.find("<|endoftext|>", start);
        const std::string d = text.substr(start, at == std::string::npos ? at : at - start);
        if (d.find_first_not_of(" \n") != std::string::npos) docs.push_back(d);
        if (at == std::string::npos) break;
        start = at + 13;
    }
    ASSERT_EQ(docs.size(), 5u);
    EXPECT_EQ(tok().decode(tokens), delimited(docs));
    // Each document is encoded on its own: its tokens follow its eot exactly.
    std::vector<int> expected;
    for (const auto& d : docs) {
        expected.push_back(tok().eot_token());
        const auto body = tok().encode_ordinary(d);
        expected.insert(expected.end(), body.begin(), body.end());
    }
    EXPECT_EQ(tokens, expected);

    const auto info = nlohmann::json::parse(read_text_file(dir_ / "out" / "prepare.json"));
    EXPECT_EQ(info.at("documents"), 5);
    EXPECT_EQ(info.at("train_tokens"), result.train_tokens);
    EXPECT_EQ(info.at("val_tokens"), 64);
    EXPECT_EQ(info.at("tokenizer").at("eot_token"), 50256);
    EXPECT_EQ(info.at("train_shards").size(), result.train_shards.size());
    EXPECT_EQ(info.at("train_shards")[0].at("tokens"), 100);
    EXPECT_EQ(info.at("val_shards")[0].at("file"), "tiny_val_000000.bin");
}

TEST_F(Prepare, ExactShardMultiple) {
    // Find the stream length, then ask for shards that divide the train part exactly:
    // no empty trailing shard may appear.
    const std::vector<std::string> docs{"one two three", "four five", "six"};
    write_text_file(dir_ / "a.txt",
                    docs[0] + "<|endoftext|>" + docs[1] + "<|endoftext|>" + docs[2]);
    const size_t total = tok().encode(delimited(docs)).size();
    ASSERT_GT(total, 6u);
    const auto result = prepare_shards(options({dir_ / "a.txt"}, 3, total - 6), tok());
    EXPECT_EQ(result.train_tokens, 6u);
    EXPECT_EQ(result.train_shards.size(), 2u);
    EXPECT_EQ(tok().decode(read_shards(result, 3)), delimited(docs));
}

TEST_F(Prepare, JsonlGzAndSeveralInputsInOrder) {
    std::vector<std::string> json_docs;
    std::string jsonl;
    for (int i = 0; i < 300; ++i) {
        json_docs.push_back("Story " + std::to_string(i) + ": naïve café, 日本語 " +
                            std::string(static_cast<size_t>(i % 17), '!') + "\nThe end.");
        jsonl += nlohmann::json{{"text", json_docs.back()}, {"id", i}}.dump() + "\n";
    }
    write_text_file(dir_ / "b.jsonl.gz", gzip(jsonl));
    write_text_file(dir_ / "a.txt", "Plain text first.\n");
    const auto result =
        prepare_shards(options({dir_ / "a.txt", dir_ / "b.jsonl.gz"}, 1000, 50), tok());
    EXPECT_EQ(result.documents, 301u);
    std::vector<std::string> all{"Plain text first.\n"};
    all.insert(all.end(), json_docs.begin(), json_docs.end());
    EXPECT_EQ(tok().decode(read_shards(result, 1000)), delimited(all));
    const auto info = nlohmann::json::parse(read_text_file(dir_ / "out" / "prepare.json"));
    ASSERT_EQ(info.at("inputs").size(), 2u);
    EXPECT_EQ(info.at("inputs")[1].at("documents"), 300);
}

TEST_F(Prepare, LargeDocumentSplitAcrossThreads) {
    // Over the size at which one document is encoded in parallel chunks by itself.
    const std::string shakespeare =
        read_text_file(testing::shared_data() / "text/tinyshakespeare.txt");
    std::string big;
    while (big.size() < (size_t{5} << 20)) big += shakespeare;
    write_text_file(dir_ / "big.txt", big + "<|endoftext|>small one");
    auto o = options({dir_ / "big.txt"}, 1'000'000, 1000);
    o.show_progress = true;  // the bar is drawn on stderr; it must not disturb anything
    const auto result = prepare_shards(o, tok());
    EXPECT_EQ(result.documents, 2u);
    const auto tokens = read_shards(result, 1'000'000);
    std::vector<int> expected{tok().eot_token()};
    const auto body = tok().encode_ordinary(big);
    expected.insert(expected.end(), body.begin(), body.end());
    const auto small = tok().encode("<|endoftext|>small one");
    expected.insert(expected.end(), small.begin(), small.end());
    EXPECT_EQ(tokens, expected);
}

TEST_F(Prepare, StaleShardsOfEarlierRunAreRemoved) {
    write_text_file(dir_ / "a.txt",
                    read_text_file(testing::shared_data() / "text/tinystories_sample.txt"));
    const auto many = prepare_shards(options({dir_ / "a.txt"}, 50, 10), tok());
    ASSERT_GT(many.train_shards.size(), 3u);
    write_text_file(dir_ / "out" / "other_train_000000.bin", "not ours");
    const auto few = prepare_shards(options({dir_ / "a.txt"}, 100000, 10), tok());
    ASSERT_EQ(few.train_shards.size(), 1u);
    EXPECT_FALSE(fs::exists(many.train_shards[1]));
    EXPECT_FALSE(fs::exists(many.train_shards.back()));
    EXPECT_TRUE(fs::exists(dir_ / "out" / "other_train_000000.bin"));
    EXPECT_EQ(list_token_shards((dir_ / "out" / "tiny_train_*").string()).size(), 1u);
}

TEST_F(Prepare, TooSmallCorpusIsAnError) {
    write_text_file(dir_ / "small.txt", "hello world");  // eot + 2 tokens
    try {
        prepare_shards(options({dir_ / "small.txt"}, 100, 3), tok());
        ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("too small"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("3"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir_ / "out" / "tiny_val_000000.bin"));
    EXPECT_FALSE(fs::exists(dir_ / "out" / "prepare.json"));
    // One token more than the validation split is enough.
    const auto result = prepare_shards(options({dir_ / "small.txt"}, 100, 2), tok());
    EXPECT_EQ(result.train_tokens, 1u);
}

TEST_F(Prepare, MissingInputIsNamed) {
    try {
        prepare_shards(options({dir_ / "nope.jsonl"}, 100, 3), tok());
        ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("nope.jsonl"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace greenmoe

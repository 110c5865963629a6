// Tests of prepare from Parquet: the same shards as from the same texts in JSONL, the
// --min-score filter, folders of inputs, and resuming an interrupted preparation.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/prepare.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::read_text_file;
using testing::TempDir;
using testing::write_text_file;

const fs::path kFineWeb =
    fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/parquet/fineweb_edu.parquet";

json fineweb_rows() {
    std::ifstream in(fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/parquet/fineweb_edu.json");
    return json::parse(in).at("rows");
}

// The same documents as JSONL lines {"text": ..., "int_score": ...}; with min_score, only those
// that pass it.
std::string fineweb_jsonl(double min_score = -1e300, bool with_scores = true) {
    std::string out;
    for (const json& row : fineweb_rows()) {
        if (row["int_score"].get<double>() < min_score) continue;
        json line = {{"text", row["text"]}};
        if (with_scores) line["int_score"] = row["int_score"];
        out += line.dump();
        out += '\n';
    }
    return out;
}

struct Shards {
    std::vector<std::string> names, bytes;
    bool operator==(const Shards&) const = default;
};

Shards read_shards(const fs::path& dir) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().extension() == ".bin") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    Shards s;
    for (const auto& f : files) {
        s.names.push_back(f.filename().string());
        s.bytes.push_back(read_text_file(f));
    }
    return s;
}

class PrepareParquet : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        tokenizer_ = std::make_unique<Gpt2Tokenizer>(
            Gpt2Tokenizer::load(greenmoe::testing::tokenizer_dir()));
    }
    static void TearDownTestSuite() { tokenizer_.reset(); }

    PrepareOptions options(std::vector<fs::path> inputs, const std::string& out) const {
        PrepareOptions o;
        o.inputs = std::move(inputs);
        o.out_dir = dir_ / out;
        o.name = "fw";
        o.shard_tokens = 1000;
        o.val_tokens = 700;
        o.show_progress = false;
        return o;
    }
    PrepareResult run(const PrepareOptions& o) const { return prepare_shards(o, *tokenizer_); }

    TempDir dir_;
    static std::unique_ptr<Gpt2Tokenizer> tokenizer_;
};

std::unique_ptr<Gpt2Tokenizer> PrepareParquet::tokenizer_;

TEST_F(PrepareParquet, SameShardsAsTheSameTextsInJsonl) {
    write_text_file(dir_ / "fw.jsonl", fineweb_jsonl());
    const PrepareResult a = run(options({kFineWeb}, "parquet"));
    const PrepareResult b = run(options({dir_ / "fw.jsonl"}, "jsonl"));
    EXPECT_EQ(a.documents, fineweb_rows().size());
    EXPECT_EQ(a.documents, b.documents);
    EXPECT_GT(a.train_shards.size(), 3u);
    EXPECT_EQ(read_shards(dir_ / "parquet"), read_shards(dir_ / "jsonl"));
    EXPECT_FALSE(fs::exists(dir_ / "parquet/fw.prepare-state.json"));
}

TEST_F(PrepareParquet, MinScoreKeepsTheDocumentsAtOrAboveIt) {
    write_text_file(dir_ / "kept.jsonl", fineweb_jsonl(3, false));
    write_text_file(dir_ / "all.jsonl", fineweb_jsonl());
    auto o = options({kFineWeb}, "parquet");
    o.corpus.min_score = 3;
    const PrepareResult a = run(o);
    auto j = options({dir_ / "all.jsonl"}, "jsonl_filtered");
    j.corpus.min_score = 3;
    run(j);
    const PrepareResult c = run(options({dir_ / "kept.jsonl"}, "jsonl_kept"));
    EXPECT_LT(a.documents, fineweb_rows().size());
    EXPECT_EQ(a.documents, c.documents);
    EXPECT_EQ(read_shards(dir_ / "parquet"), read_shards(dir_ / "jsonl_kept"));
    EXPECT_EQ(read_shards(dir_ / "jsonl_filtered"), read_shards(dir_ / "jsonl_kept"));
}

TEST_F(PrepareParquet, FoldersAreReadInNameOrder) {
    fs::create_directories(dir_ / "in");
    fs::copy_file(kFineWeb, dir_ / "in/b.parquet");
    write_text_file(dir_ / "in/a.jsonl", fineweb_jsonl());
    write_text_file(dir_ / "in/notes.md", "not a corpus file");
    run(options({dir_ / "in"}, "folder"));
    run(options({dir_ / "in/a.jsonl", dir_ / "in/b.parquet"}, "files"));
    EXPECT_EQ(read_shards(dir_ / "folder"), read_shards(dir_ / "files"));
}

TEST_F(PrepareParquet, MissingTextColumnIsNamed) {
    auto o = options({kFineWeb}, "out");
    o.corpus.text_column = "content";
    const std::string message = testing::error_message([&] { run(o); });
    EXPECT_NE(message.find("fineweb_edu.parquet: no text column 'content'"), std::string::npos)
        << message;
}

struct Interrupted {};

// A preparation stopped after some train shards, started again: the kept shards are not
// written again and the result equals an uninterrupted run, across a file boundary too.
TEST_F(PrepareParquet, ResumesWhereAnInterruptedRunStopped) {
    write_text_file(dir_ / "more.jsonl", fineweb_jsonl(3, false));
    const std::vector<fs::path> inputs = {kFineWeb, dir_ / "more.jsonl"};
    const PrepareResult whole = run(options(inputs, "whole"));
    ASSERT_GT(whole.train_shards.size(), 12u);

    for (const size_t stop_after : {size_t{2}, whole.train_shards.size() - 2}) {
        const std::string out = fmt::format("resumed{}", stop_after);
        auto o = options(inputs, out);
        o.after_train_shard = [&](size_t written) {
            if (written == stop_after) throw Interrupted{};
        };
        EXPECT_THROW(run(o), Interrupted);
        EXPECT_TRUE(fs::exists(dir_ / out / "fw.prepare-state.json"));

        std::vector<size_t> written_again;
        o.after_train_shard = [&](size_t written) { written_again.push_back(written); };
        const PrepareResult r = run(o);
        EXPECT_EQ(r.resumed_train_shards, stop_after);
        ASSERT_FALSE(written_again.empty());
        EXPECT_EQ(written_again.front(), stop_after + 1);  // no finished shard redone
        EXPECT_EQ(r.documents, whole.documents);
        EXPECT_EQ(r.train_tokens, whole.train_tokens);
        EXPECT_EQ(read_shards(dir_ / out), read_shards(dir_ / "whole"));
        EXPECT_EQ(read_text_file(dir_ / out / "prepare.json"),
                  read_text_file(dir_ / "whole/prepare.json"));
        EXPECT_FALSE(fs::exists(dir_ / out / "fw.prepare-state.json"));
    }
}

TEST_F(PrepareParquet, ChangedOptionsOrNoResumeStartOver) {
    auto o = options({kFineWeb}, "out");
    o.after_train_shard = [](size_t written) {
        if (written == 3) throw Interrupted{};
    };
    EXPECT_THROW(run(o), Interrupted);
    o.after_train_shard = nullptr;
    o.shard_tokens = 1200;  // another cut of the stream: the old shards are no use
    EXPECT_EQ(run(o).resumed_train_shards, 0u);

    o.after_train_shard = [](size_t written) {
        if (written == 3) throw Interrupted{};
    };
    EXPECT_THROW(run(o), Interrupted);
    o.after_train_shard = nullptr;
    o.resume = false;
    EXPECT_EQ(run(o).resumed_train_shards, 0u);
}

}  // namespace
}  // namespace greenmoe

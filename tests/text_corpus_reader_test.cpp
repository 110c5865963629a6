// Tests of DocumentReader: .txt and .jsonl documents, plain, gzip and zstd, and errors.
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/text/corpus_reader.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::gzip;

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_text_file;

std::string zstd(const std::string& data) {
    std::string out(ZSTD_compressBound(data.size()), '\0');
    const size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
    EXPECT_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
}

std::vector<std::string> read_all(const fs::path& path) {
    DocumentReader reader(path);
    std::vector<std::string> docs;
    std::string doc;
    while (reader.next(doc)) docs.push_back(doc);
    EXPECT_FALSE(reader.next(doc));  // stays at the end
    EXPECT_EQ(reader.bytes_read(), reader.file_size()) << path;
    return docs;
}

template <typename Body>
void expect_error(Body&& body, const std::vector<std::string>& parts) {
    try {
        body();
        ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
        for (const auto& part : parts) {
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
                << "message: " << e.what() << "\nexpected to contain: " << part;
        }
    }
}

// Large enough to span several read chunks, with separators at awkward places.
std::string many_documents(std::vector<std::string>& docs) {
    std::string text;
    for (int i = 0; i < 3000; ++i) {
        std::string doc = "Document " + std::to_string(i) + ": ";
        for (int j = 0; j < (i * 37) % 2000; ++j) doc += static_cast<char>('a' + (i + j) % 26);
        doc += "\n";
        docs.push_back(doc);
        text += doc + "<|endoftext|>";
    }
    return text;
}

TEST(CorpusReader, TxtWithoutSeparatorIsOneDocument) {
    TempDir dir;
    const std::string text = "First line.\n\nSecond  line with <|endof text|> lookalike.\n";
    write_text_file(dir / "a.txt", text);
    EXPECT_EQ(read_all(dir / "a.txt"), std::vector<std::string>{text});
    write_text_file(dir / "empty.txt", "");
    EXPECT_TRUE(read_all(dir / "empty.txt").empty());
}

TEST(CorpusReader, TxtSeparatorSplitsDocuments) {
    TempDir dir;
    write_text_file(dir / "a.txt",
                    "one<|endoftext|>\ntwo\n<|endoftext|><|endoftext|>  \n<|endoftext|>three\n");
    EXPECT_EQ(read_all(dir / "a.txt"), (std::vector<std::string>{"one", "\ntwo\n", "three\n"}));
    const auto stories = read_all(testing::shared_data() / "text/tinystories_sample.txt");
    EXPECT_EQ(stories.size(), 5u);
}

TEST(CorpusReader, SeparatorAcrossChunkBoundary) {
    TempDir dir;
    constexpr size_t kChunk = size_t{1} << 20;  // the reader's chunk size
    for (size_t offset : {kChunk - 13, kChunk - 7, kChunk - 1, kChunk}) {
        const std::string first(offset, 'x');
        const std::string text = first + "<|endoftext|>" + "tail";
        write_text_file(dir / "b.txt", text);
        const auto docs = read_all(dir / "b.txt");
        ASSERT_EQ(docs.size(), 2u) << offset;
        EXPECT_EQ(docs[0], first);
        EXPECT_EQ(docs[1], "tail");
    }
}

TEST(CorpusReader, CompressedTxtMatchesPlain) {
    TempDir dir;
    std::vector<std::string> expected;
    const std::string text = many_documents(expected);
    ASSERT_GT(text.size(), size_t{2} << 20);
    write_text_file(dir / "c.txt", text);
    write_text_file(dir / "c.txt.gz", gzip(text));
    write_text_file(dir / "c.txt.zst", zstd(text));
    EXPECT_EQ(read_all(dir / "c.txt"), expected);
    EXPECT_EQ(read_all(dir / "c.txt.gz"), expected);
    EXPECT_EQ(read_all(dir / "c.txt.zst"), expected);
    // Compressed progress counts compressed bytes, well below the text size.
    DocumentReader reader(dir / "c.txt.gz");
    EXPECT_LT(reader.file_size(), text.size() / 2);
}

TEST(CorpusReader, ConcatenatedMembersAndFrames) {
    TempDir dir;
    write_text_file(dir / "m.txt.gz", gzip("alpha<|endoftext|>be") + gzip("ta<|endoftext|>gamma"));
    write_text_file(dir / "m.txt.zst", zstd("alpha<|endoftext|>be") + zstd("ta<|endoftext|>gamma"));
    const std::vector<std::string> expected{"alpha", "beta", "gamma"};
    EXPECT_EQ(read_all(dir / "m.txt.gz"), expected);
    EXPECT_EQ(read_all(dir / "m.txt.zst"), expected);
}

TEST(CorpusReader, CorruptOrTruncatedCompressionIsNamed) {
    TempDir dir;
    std::vector<std::string> docs;
    const std::string text = many_documents(docs);
    const std::string gz = gzip(text), zs = zstd(text);
    write_text_file(dir / "t.txt.gz", gz.substr(0, gz.size() / 2));
    expect_error([&] { read_all(dir / "t.txt.gz"); }, {"t.txt.gz", "truncated"});
    write_text_file(dir / "t.txt.zst", zs.substr(0, zs.size() / 2));
    expect_error([&] { read_all(dir / "t.txt.zst"); }, {"t.txt.zst", "truncated"});
    write_text_file(dir / "bad.txt.gz", "this is not gzip data at all");
    expect_error([&] { read_all(dir / "bad.txt.gz"); }, {"bad.txt.gz", "gzip"});
    write_text_file(dir / "bad.txt.zst", "this is not zstd data at all");
    expect_error([&] { read_all(dir / "bad.txt.zst"); }, {"bad.txt.zst", "zstd"});
}

TEST(CorpusReader, JsonlDocuments) {
    TempDir dir;
    const std::string jsonl =
        "{\"text\": \"first doc\", \"id\": 1}\n"
        "\n"
        "   \n"
        "{\"id\": 2, \"text\": \"second\\nwith <|endoftext|> inside \\u00e9\"}\r\n"
        "{\"text\": \"\"}\n"
        "{\"text\": \"last, no newline\"}";
    const std::vector<std::string> expected{"first doc", "second\nwith <|endoftext|> inside é",
                                            "last, no newline"};
    write_text_file(dir / "d.jsonl", jsonl);
    write_text_file(dir / "d.jsonl.gz", gzip(jsonl));
    write_text_file(dir / "d.jsonl.zst", zstd(jsonl));
    EXPECT_EQ(read_all(dir / "d.jsonl"), expected);
    EXPECT_EQ(read_all(dir / "d.jsonl.gz"), expected);
    EXPECT_EQ(read_all(dir / "d.jsonl.zst"), expected);
}

TEST(CorpusReader, JsonlLongLinesAcrossChunks) {
    TempDir dir;
    std::string jsonl;
    std::vector<std::string> expected;
    for (int i = 0; i < 40; ++i) {
        expected.push_back(std::string(100000 + i * 7919, static_cast<char>('a' + i % 26)));
        jsonl += "{\"text\": \"" + expected.back() + "\"}\n";
    }
    write_text_file(dir / "long.jsonl.zst", zstd(jsonl));
    EXPECT_EQ(read_all(dir / "long.jsonl.zst"), expected);
}

TEST(CorpusReader, JsonlErrorsNameFileAndLine) {
    TempDir dir;
    const std::string good = "{\"text\": \"ok\"}\n";
    write_text_file(dir / "e1.jsonl", good + "\n" + "{\"text\": \"unterminated}\n");
    expect_error([&] { read_all(dir / "e1.jsonl"); }, {"e1.jsonl:3", "JSON"});
    write_text_file(dir / "e2.jsonl", good + "{\"body\": \"no text field\"}\n");
    expect_error([&] { read_all(dir / "e2.jsonl"); }, {"e2.jsonl:2", "\"text\""});
    write_text_file(dir / "e3.jsonl", good + good + "{\"text\": 42}\n");
    expect_error([&] { read_all(dir / "e3.jsonl"); }, {"e3.jsonl:3", "string"});
    write_text_file(dir / "e4.jsonl.gz", gzip("[\"an array\"]\n"));
    expect_error([&] { read_all(dir / "e4.jsonl.gz"); }, {"e4.jsonl.gz:1", "object"});
}

TEST(CorpusReader, BadFilesAreNamed) {
    TempDir dir;
    expect_error([&] { DocumentReader r(dir / "missing.txt"); }, {"missing.txt"});
    write_text_file(dir / "data.csv", "a,b\n");
    expect_error([&] { DocumentReader r(dir / "data.csv"); }, {"data.csv", ".jsonl"});
    write_text_file(dir / "data.gz", gzip("x"));
    expect_error([&] { DocumentReader r(dir / "data.gz"); }, {"data.gz", ".txt"});
}

}  // namespace
}  // namespace greenmoe

// Tests of the Parquet reader: every fixture written by tools/fixtures/make_parquet_fixtures.py
// (each encoding, codec, page version, nullable and nested column) reads back the values
// pyarrow wrote; flat column reads; and errors that name the file, row group and column.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/eval/tasks/task_files.h"
#include "greenmoe/io/parquet/parquet_encodings.h"
#include "greenmoe/io/parquet/parquet_reader.h"
#include "greenmoe/io/parquet/thrift_compact.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

fs::path fixture_dir() {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/parquet";
}

json expected_rows(const std::string& name) {
    std::ifstream in(fixture_dir() / (name + ".json"));
    return json::parse(in).at("rows");
}

std::string file_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

class ParquetFixtures : public ::testing::TestWithParam<std::string> {};

TEST_P(ParquetFixtures, ValuesReadEqualValuesWritten) {
    const std::string name = GetParam();
    const json expected = expected_rows(name);
    const std::vector<json> rows = parquet::read_parquet_rows(fixture_dir() / (name + ".parquet"));
    ASSERT_EQ(rows.size(), expected.size());
    for (size_t i = 0; i < rows.size(); ++i) {
        ASSERT_EQ(rows[i], expected[i]) << name << " row " << i << "\n got      " << rows[i].dump()
                                        << "\n expected " << expected[i].dump();
    }
}

INSTANTIATE_TEST_SUITE_P(Parquet, ParquetFixtures,
                         ::testing::Values("plain_v1_uncompressed", "dict_v1_snappy",
                                           "dict_v2_gzip", "plain_v2_zstd", "delta_v1_uncompressed",
                                           "delta_v2_zstd", "nested_v1_snappy",
                                           "nested_v2_uncompressed", "fineweb_edu"));

TEST(ParquetReader, FineWebEduSchemaAndFlatColumns) {
    const auto file = parquet::ParquetFile::open(fixture_dir() / "fineweb_edu.parquet");
    EXPECT_EQ(file.field_names(),
              (std::vector<std::string>{"text", "id", "dump", "url", "file_path", "language",
                                        "language_score", "token_count", "score", "int_score"}));
    EXPECT_GT(file.num_row_groups(), 1u);
    const json expected = expected_rows("fineweb_edu");
    size_t row = 0;
    parquet::FlatColumn text, score, lang_score;
    for (size_t g = 0; g < file.num_row_groups(); ++g) {
        file.read_flat(g, "text", text);
        file.read_flat(g, "int_score", score);
        file.read_flat(g, "language_score", lang_score);
        ASSERT_EQ(text.rows, static_cast<size_t>(file.row_group_rows(g)));
        for (size_t i = 0; i < text.rows; ++i, ++row) {
            ASSERT_TRUE(text.has_value(i));
            EXPECT_EQ(text.values.strings[i], expected[row]["text"].get<std::string>());
            EXPECT_EQ(score.values.ints[i], expected[row]["int_score"].get<int64_t>());
            EXPECT_EQ(lang_score.values.reals[i], expected[row]["language_score"].get<double>());
        }
        EXPECT_LE(file.row_group_end(g), file.file_size());
    }
    EXPECT_EQ(row, expected.size());
}

TEST(ParquetReader, OnlyTheAskedColumnsAndNullsInFlatColumns) {
    const auto rows =
        parquet::read_parquet_rows(fixture_dir() / "dict_v1_snappy.parquet", {"s", "i32"});
    const json expected = expected_rows("dict_v1_snappy");
    ASSERT_EQ(rows.size(), expected.size());
    for (size_t i = 0; i < rows.size(); ++i) {
        EXPECT_EQ(rows[i].size(), 2u);
        EXPECT_EQ(rows[i]["s"], expected[i]["s"]);
        EXPECT_EQ(rows[i]["i32"], expected[i]["i32"]);
    }
    const auto file = parquet::ParquetFile::open(fixture_dir() / "plain_v2_zstd.parquet");
    parquet::FlatColumn s;
    file.read_flat(0, "s", s);
    size_t value = 0;
    for (size_t i = 0; i < s.rows; ++i) {
        if (expected[i]["s"].is_null()) {
            EXPECT_FALSE(s.has_value(i));
        } else {
            ASSERT_TRUE(s.has_value(i));
            EXPECT_EQ(s.values.strings[value++], expected[i]["s"].get<std::string>());
        }
    }
    EXPECT_EQ(value, s.values.size());
}

// Benchmark tasks read a data set's Parquet file where they read its JSONL.
TEST(ParquetReader, TaskFilesReadParquetRowsAsJsonLines) {
    const auto rows = tasks::read_jsonl(fixture_dir() / "nested_v1_snappy.parquet");
    const json expected = expected_rows("nested_v1_snappy");
    ASSERT_EQ(rows.size(), expected.size());
    for (size_t i = 0; i < rows.size(); ++i) {
        EXPECT_EQ(rows[i].line, i + 1);
        EXPECT_EQ(rows[i].value, expected[i]);
    }
    EXPECT_EQ(tasks::json_strings(rows[0].value, "choices.label", "row 1"),
              (std::vector<std::string>{"A", "B", "C"}));
}

TEST(ParquetReader, NestedColumnIsNotFlat) {
    const auto file = parquet::ParquetFile::open(fixture_dir() / "nested_v1_snappy.parquet");
    parquet::FlatColumn c;
    const std::string message = testing::error_message([&] { file.read_flat(0, "choices", c); });
    EXPECT_NE(message.find("column 'choices' is nested"), std::string::npos) << message;
}

TEST(ParquetReader, MissingColumnNamesFileAndColumns) {
    const fs::path path = fixture_dir() / "fineweb_edu.parquet";
    const std::string message =
        testing::error_message([&] { parquet::read_parquet_rows(path, {"content"}); });
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("no column 'content'"), std::string::npos) << message;
    EXPECT_NE(message.find("text, id, dump"), std::string::npos) << message;
}

TEST(ParquetReader, BadMagicAndTruncation) {
    TempDir dir;
    const std::string bytes = file_bytes(fixture_dir() / "plain_v1_uncompressed.parquet");
    std::string bad = bytes;
    bad[1] = 'X';
    write_bytes(dir / "bad.parquet", bad);
    std::string message =
        testing::error_message([&] { parquet::ParquetFile::open(dir / "bad.parquet"); });
    EXPECT_NE(message.find("bad.parquet: not a Parquet file"), std::string::npos) << message;

    write_bytes(dir / "cut.parquet", bytes.substr(0, bytes.size() / 2));
    message = testing::error_message([&] { parquet::ParquetFile::open(dir / "cut.parquet"); });
    EXPECT_NE(message.find("cut.parquet"), std::string::npos) << message;
}

// The first page's SNAPPY stream made to claim another length: the error names the file, the
// row group, the column and the page, and says what failed.
TEST(ParquetReader, CorruptPageNamesRowGroupAndColumn) {
    TempDir dir;
    const fs::path src = fixture_dir() / "fineweb_edu.parquet";
    std::string bytes = file_bytes(src);
    // The first column chunk (text) starts right after the 4-byte magic.
    const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
    const parquet::PageHeader h = parquet::parse_page_header(data + 4, bytes.size() - 4, "t");
    const size_t start = 4 + h.header_size;
    bytes[start] = static_cast<char>(0xff);
    bytes[start + 1] = static_cast<char>(0x7f);
    write_bytes(dir / "corrupt.parquet", bytes);
    const std::string message = testing::error_message(
        [&] { parquet::read_parquet_rows(dir / "corrupt.parquet", {"text"}); });
    EXPECT_NE(message.find("corrupt.parquet: row group 0, column 'text', page 0: SNAPPY"),
              std::string::npos)
        << message;
}

TEST(ParquetEncodings, RleHybridAndDeltaBinaryPacked) {
    // RLE run of 5 × 3 at width 2, then a bit-packed group of 8 values 0..7 at width 3.
    const std::vector<uint8_t> rle = {0x0a, 0x03, 0x03, 0x88, 0xc6, 0xfa};
    std::vector<uint32_t> out;
    const size_t used = parquet::decode_rle_hybrid({rle.data(), 2}, 2, 5, out, "t");
    EXPECT_EQ(used, 2u);
    EXPECT_EQ(out, (std::vector<uint32_t>{3, 3, 3, 3, 3}));
    out.clear();
    parquet::decode_rle_hybrid({rle.data() + 2, 4}, 3, 8, out, "t");
    EXPECT_EQ(out, (std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
    // Encodings.md's example: 1, 2, 3, 4, 5 with block 128 and 4 miniblocks; deltas are all 1,
    // so min delta 1 and bit width 0.
    const std::vector<uint8_t> delta = {0x80, 0x01, 0x04, 0x05, 0x02, 0x02, 0, 0, 0, 0};
    std::vector<int64_t> values;
    parquet::decode_delta_binary_packed({delta.data(), delta.size()}, 5, false, values, "t");
    EXPECT_EQ(values, (std::vector<int64_t>{1, 2, 3, 4, 5}));
    // A forged count is refused rather than allocated.
    EXPECT_THROW(
        parquet::decode_delta_binary_packed({delta.data(), delta.size()}, 6, false, values, "t"),
        Error);
}

TEST(ParquetThrift, ForgedListSizeIsRefused) {
    // A struct whose field 1 is a list claiming 2^31 i32 elements in a few bytes.
    const std::vector<uint8_t> bytes = {0x19, 0xf5, 0x80, 0x80, 0x80, 0x80, 0x08, 0x00};
    parquet::ThriftReader in(bytes.data(), bytes.size(), "forged");
    in.begin_struct();
    const auto field = in.read_field();
    EXPECT_EQ(field.type, parquet::ThriftType::kList);
    EXPECT_THROW(in.read_list_header(), Error);
}

}  // namespace
}  // namespace greenmoe

// Parquet's file metadata and page headers (parquet-format's parquet.thrift), the fields
// greenmoe uses, decoded from Thrift's compact protocol.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace greenmoe::parquet {

enum class PhysicalType : int32_t {
    kBoolean = 0,
    kInt32 = 1,
    kInt64 = 2,
    kInt96 = 3,
    kFloat = 4,
    kDouble = 5,
    kByteArray = 6,
    kFixedLenByteArray = 7,
};

enum class Repetition : int32_t { kRequired = 0, kOptional = 1, kRepeated = 2 };

enum class Encoding : int32_t {
    kPlain = 0,
    kPlainDictionary = 2,
    kRle = 3,
    kBitPacked = 4,
    kDeltaBinaryPacked = 5,
    kDeltaLengthByteArray = 6,
    kDeltaByteArray = 7,
    kRleDictionary = 8,
    kByteStreamSplit = 9,
};

enum class Codec : int32_t {
    kUncompressed = 0,
    kSnappy = 1,
    kGzip = 2,
    kLzo = 3,
    kBrotli = 4,
    kLz4 = 5,
    kZstd = 6,
    kLz4Raw = 7,
};

enum class PageType : int32_t {
    kDataPage = 0,
    kIndexPage = 1,
    kDictionaryPage = 2,
    kDataPageV2 = 3
};

// ConvertedType values greenmoe looks at (LIST and MAP shape nested values as JSON).
constexpr int32_t kConvertedMap = 1;
constexpr int32_t kConvertedMapKeyValue = 2;
constexpr int32_t kConvertedList = 3;

const char* name_of(PhysicalType type);
const char* name_of(Encoding encoding);
const char* name_of(Codec codec);

struct SchemaElement {
    std::string name;
    std::optional<PhysicalType> type;  // absent for groups
    int32_t type_length = 0;
    Repetition repetition = Repetition::kRequired;
    int32_t num_children = 0;
    std::optional<int32_t> converted_type;
    bool logical_list = false, logical_map = false;  // LogicalType LIST / MAP
};

struct ColumnMetaData {
    PhysicalType type = PhysicalType::kBoolean;
    std::vector<std::string> path_in_schema;
    Codec codec = Codec::kUncompressed;
    int64_t num_values = 0;
    int64_t total_compressed_size = 0;
    int64_t data_page_offset = 0;
    std::optional<int64_t> dictionary_page_offset;
};

struct ColumnChunk {
    std::string file_path;  // non-empty: the data lives in another file (unsupported)
    ColumnMetaData meta;
    bool has_meta = false;
    bool encrypted = false;
};

struct RowGroup {
    std::vector<ColumnChunk> columns;
    int64_t num_rows = 0;
};

struct FileMetaData {
    std::vector<SchemaElement> schema;
    int64_t num_rows = 0;
    std::vector<RowGroup> row_groups;
    bool encrypted = false;
};

struct DataPageHeader {
    int32_t num_values = 0;
    Encoding encoding = Encoding::kPlain;
    Encoding definition_level_encoding = Encoding::kRle;
    Encoding repetition_level_encoding = Encoding::kRle;
};

struct DictionaryPageHeader {
    int32_t num_values = 0;
    Encoding encoding = Encoding::kPlain;
};

struct DataPageHeaderV2 {
    int32_t num_values = 0, num_nulls = 0, num_rows = 0;
    Encoding encoding = Encoding::kPlain;
    int32_t definition_levels_byte_length = 0, repetition_levels_byte_length = 0;
    bool is_compressed = true;
};

struct PageHeader {
    PageType type = PageType::kDataPage;
    int32_t uncompressed_page_size = 0, compressed_page_size = 0;
    std::optional<DataPageHeader> data_page;
    std::optional<DictionaryPageHeader> dictionary_page;
    std::optional<DataPageHeaderV2> data_page_v2;
    size_t header_size = 0;  // bytes the header itself took
};

// Decodes the footer's FileMetaData; `what` prefixes errors (the file's name).
FileMetaData parse_file_metadata(const uint8_t* data, size_t size, const std::string& what);
// Decodes a page header at the start of [data, data + size).
PageHeader parse_page_header(const uint8_t* data, size_t size, const std::string& what);

}  // namespace greenmoe::parquet

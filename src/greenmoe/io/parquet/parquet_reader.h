// Reading Parquet files (Hugging Face data sets, FineWeb-Edu): the footer, then chosen columns
// row group by row group, as flat typed columns or as JSON-like rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/io/mapped_file.h"
#include "greenmoe/io/parquet/parquet_column.h"
#include "greenmoe/io/parquet/parquet_metadata.h"
#include "greenmoe/io/parquet/parquet_schema.h"

namespace greenmoe::parquet {

// One top-level, non-nested column of one row group: a value or null per row.
struct FlatColumn {
    PhysicalType type = PhysicalType::kBoolean;
    std::vector<uint8_t> present;  // per row: 1 when it has a value (empty: every row has one)
    ColumnValues values;           // the present rows' values, in row order

    size_t rows = 0;
    bool has_value(size_t row) const { return present.empty() || present[row] != 0; }
};

// A Parquet file, mapped; the footer is read and checked by open(). Errors name the file,
// and where it applies the row group, the column and the page.
class ParquetFile {
  public:
    static ParquetFile open(const std::filesystem::path& path);

    const std::filesystem::path& path() const { return file_.path(); }
    int64_t num_rows() const { return meta_.num_rows; }
    size_t num_row_groups() const { return meta_.row_groups.size(); }
    int64_t row_group_rows(size_t group) const { return meta_.row_groups[group].num_rows; }
    // The file offset where row group `group`'s column data ends (a progress measure).
    uint64_t row_group_end(size_t group) const;
    uint64_t file_size() const { return file_.size(); }
    const Schema& schema() const { return schema_; }
    std::vector<std::string> field_names() const;
    bool has_field(const std::string& name) const { return schema_.find_field(name) >= 0; }

    // The top-level column `field` of row group `group`. It must be a primitive column
    // (required or optional, not nested). Throws Error naming the field when it is missing
    // or nested.
    void read_flat(size_t group, const std::string& field, FlatColumn& out) const;

    // The rows of row group `group` as JSON objects holding `fields` (every top-level field
    // when empty): strings, numbers, booleans, null; lists as arrays, groups as objects.
    // BYTE_ARRAY values must be UTF-8 to print as JSON; they are kept as their bytes.
    void read_rows(size_t group, const std::vector<std::string>& fields,
                   std::vector<nlohmann::json>& rows) const;

  private:
    ParquetFile() = default;
    std::string column_what(size_t group, int leaf) const;
    LeafInfo leaf_info(int leaf) const;
    void read_leaf(size_t group, int leaf, LeafData& out) const;
    int require_field(const std::string& field) const;

    MappedFile file_;
    FileMetaData meta_;
    Schema schema_;
};

// Every row of the file (`fields`, or all when empty), row group after row group.
std::vector<nlohmann::json> read_parquet_rows(const std::filesystem::path& path,
                                              const std::vector<std::string>& fields = {});

}  // namespace greenmoe::parquet

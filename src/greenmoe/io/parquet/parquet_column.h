// One column chunk of one row group: its pages read, decompressed and decoded into levels
// and values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "greenmoe/io/parquet/parquet_encodings.h"
#include "greenmoe/io/parquet/parquet_metadata.h"

namespace greenmoe::parquet {

// Limits that keep a forged header from making the reader allocate without bound. Real pages
// are far below them: pyarrow and parquet-mr write at most 20,000 rows and about 1 MiB a page.
constexpr int64_t kMaxPageBytes = int64_t{1} << 30;           // one page, uncompressed
constexpr int64_t kMaxPageValues = int64_t{1} << 22;          // levels in one page
constexpr int64_t kMaxChunkValues = int64_t{1} << 26;         // levels in one column chunk
constexpr uint64_t kMaxChunkStringBytes = uint64_t{1} << 30;  // decoded strings of one chunk

struct LeafInfo {
    PhysicalType type = PhysicalType::kBoolean;
    int max_def = 0, max_rep = 0;
};

// The decoded chunk: one level pair per entry (def empty when max_def is 0: every entry
// holds a value; rep empty when max_rep is 0: every entry starts a row), and the values of
// the entries whose def equals max_def.
struct LeafData {
    std::vector<uint16_t> def, rep;
    ColumnValues values;
    size_t entries = 0;
};

// Reads the chunk from the mapped file [file, file + file_size). `what` names the file, row
// group and column for errors.
void read_column_chunk(const uint8_t* file, size_t file_size, const ColumnChunk& chunk,
                       const LeafInfo& leaf, LeafData& out, const std::string& what);

}  // namespace greenmoe::parquet

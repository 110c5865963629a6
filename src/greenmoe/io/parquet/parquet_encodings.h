// Parquet's value and level encodings (parquet-format's Encodings.md): PLAIN, the RLE /
// bit-packed hybrid, DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "greenmoe/io/parquet/parquet_metadata.h"

namespace greenmoe::parquet {

// The non-null values of one leaf column, in order. BOOLEAN, INT32 and INT64 go to ints,
// FLOAT and DOUBLE to reals, BYTE_ARRAY to strings.
struct ColumnValues {
    PhysicalType type = PhysicalType::kBoolean;
    std::vector<int64_t> ints;
    std::vector<double> reals;
    std::vector<std::string> strings;

    size_t size() const;
    void clear();
    // Appends values[index] of `dictionary` (same type).
    void append_from(const ColumnValues& dictionary, size_t index);
};

// A byte range being decoded; errors are "<what>: <problem>".
struct ByteSpan {
    const uint8_t* data = nullptr;
    size_t size = 0;
};

// The RLE / bit-packed hybrid without its length prefix: `count` values of `bit_width`
// (0..32) bits appended to `out`. Returns the bytes used.
size_t decode_rle_hybrid(ByteSpan in, int bit_width, size_t count, std::vector<uint32_t>& out,
                         const std::string& what);

// PLAIN: `count` values of `type` appended to `out`. Returns the bytes used.
size_t decode_plain(ByteSpan in, PhysicalType type, size_t count, ColumnValues& out,
                    const std::string& what);

// DELTA_BINARY_PACKED: exactly `count` values (the header must say so), wrapping at 32 bits
// when `is_int32`. Returns the bytes used.
size_t decode_delta_binary_packed(ByteSpan in, size_t count, bool is_int32,
                                  std::vector<int64_t>& out, const std::string& what);

// DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY: `count` strings appended to `out`.
size_t decode_delta_length_byte_array(ByteSpan in, size_t count, std::vector<std::string>& out,
                                      const std::string& what);
// DELTA_BYTE_ARRAY's values share prefixes, so a few bytes can decode to many: the decoded
// strings may total at most `max_bytes`.
size_t decode_delta_byte_array(ByteSpan in, size_t count, std::vector<std::string>& out,
                               const std::string& what, uint64_t max_bytes);

}  // namespace greenmoe::parquet

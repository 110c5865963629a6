// Page decompression: Parquet's codecs UNCOMPRESSED, SNAPPY (raw blocks), GZIP and ZSTD.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "greenmoe/io/parquet/parquet_metadata.h"

namespace greenmoe::parquet {

// Decompresses [src, src + size) into `out`, which must end up exactly `expected` bytes
// long (the page header's uncompressed size). Throws Error "<what>: <problem>" for a codec
// greenmoe does not read (named), corrupt data or a size mismatch.
void decompress(Codec codec, const uint8_t* src, size_t size, size_t expected,
                std::vector<uint8_t>& out, const std::string& what);

}  // namespace greenmoe::parquet

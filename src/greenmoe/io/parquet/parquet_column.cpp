// Pages of a column chunk: dictionary page, data pages v1 and v2, levels and values.
#include "greenmoe/io/parquet/parquet_column.h"

#include <algorithm>
#include <cstring>

#include "greenmoe/core/error.h"
#include "greenmoe/io/parquet/parquet_codecs.h"

namespace greenmoe::parquet {

namespace {

int bit_width_of(int max_level) {
    int w = 0;
    while ((1 << w) <= max_level) ++w;
    return w;
}

class ChunkReader {
  public:
    ChunkReader(const ColumnChunk& chunk, const LeafInfo& leaf, LeafData& out,
                const std::string& what)
        : meta_(chunk.meta), leaf_(leaf), out_(out), what_(what) {
        out_.def.clear();
        out_.rep.clear();
        out_.values.clear();
        out_.values.type = leaf.type;
        out_.entries = 0;
        dictionary_.type = leaf.type;
    }

    void read(const uint8_t* file, size_t file_size) {
        check(meta_.codec == Codec::kUncompressed || meta_.codec == Codec::kSnappy ||
                  meta_.codec == Codec::kGzip || meta_.codec == Codec::kZstd,
              "{}: compression codec {} is not supported (greenmoe reads UNCOMPRESSED, SNAPPY, "
              "GZIP and ZSTD)",
              what_, name_of(meta_.codec));
        check(meta_.type == leaf_.type, "{}: the chunk holds {} values, the schema says {}", what_,
              name_of(meta_.type), name_of(leaf_.type));
        check(meta_.num_values >= 0 && meta_.num_values <= kMaxChunkValues,
              "{}: the chunk claims {} values (at most {} are read)", what_, meta_.num_values,
              kMaxChunkValues);
        int64_t start = meta_.data_page_offset;
        // Some writers leave dictionary_page_offset 0 or unset; a dictionary page is then
        // recognised by its header at data_page_offset.
        if (meta_.dictionary_page_offset && *meta_.dictionary_page_offset > 0) {
            start = std::min(start, *meta_.dictionary_page_offset);
        }
        const int64_t size = meta_.total_compressed_size;
        check(start >= 4 && size >= 0 && static_cast<uint64_t>(start) <= file_size &&
                  static_cast<uint64_t>(size) <= file_size - static_cast<uint64_t>(start),
              "{}: the chunk's bytes [{}, +{}) lie outside the file of {} bytes", what_, start,
              size, file_size);
        const uint8_t* p = file + start;
        size_t left = static_cast<size_t>(size);
        while (out_.entries < static_cast<size_t>(meta_.num_values)) {
            check(left > 0, "{}: the pages end after {} of the chunk's {} values", what_,
                  out_.entries, meta_.num_values);
            const PageHeader h = parse_page_header(p, left, page_what());
            p += h.header_size;
            left -= h.header_size;
            check(
                h.compressed_page_size >= 0 && static_cast<size_t>(h.compressed_page_size) <= left,
                "{}: a page of {} bytes, {} left in the chunk", page_what(), h.compressed_page_size,
                left);
            check(h.uncompressed_page_size >= 0 && h.uncompressed_page_size <= kMaxPageBytes,
                  "{}: a page of {} bytes uncompressed (at most {} are read)", page_what(),
                  h.uncompressed_page_size, kMaxPageBytes);
            read_page(h, p, static_cast<size_t>(h.compressed_page_size));
            p += h.compressed_page_size;
            left -= static_cast<size_t>(h.compressed_page_size);
            ++page_;
        }
        check(out_.entries == static_cast<size_t>(meta_.num_values),
              "{}: the pages hold {} values, the chunk says {}", what_, out_.entries,
              meta_.num_values);
    }

  private:
    std::string page_what() const { return fmt::format("{}, page {}", what_, page_); }

    void read_page(const PageHeader& h, const uint8_t* data, size_t size) {
        switch (h.type) {
            case PageType::kDictionaryPage:
                check(h.dictionary_page.has_value(), "{}: a dictionary page without its header",
                      page_what());
                read_dictionary(h, data, size);
                return;
            case PageType::kDataPage:
                check(h.data_page.has_value(), "{}: a data page without its header", page_what());
                read_data_v1(h, data, size);
                return;
            case PageType::kDataPageV2:
                check(h.data_page_v2.has_value(), "{}: a data page v2 without its header",
                      page_what());
                read_data_v2(h, data, size);
                return;
            case PageType::kIndexPage:
                return;
        }
        fail("{}: unknown page type {}", page_what(), static_cast<int>(h.type));
    }

    void read_dictionary(const PageHeader& h, const uint8_t* data, size_t size) {
        const DictionaryPageHeader& d = *h.dictionary_page;
        check(!has_dictionary_ && out_.entries == 0,
              "{}: a dictionary page after the chunk's first data page", page_what());
        check(d.encoding == Encoding::kPlain || d.encoding == Encoding::kPlainDictionary,
              "{}: dictionary encoding {} is not supported (PLAIN expected)", page_what(),
              name_of(d.encoding));
        check(d.num_values >= 0 && d.num_values <= kMaxPageValues, "{}: a dictionary of {} values",
              page_what(), d.num_values);
        decompress(meta_.codec, data, size, static_cast<size_t>(h.uncompressed_page_size), buffer_,
                   page_what());
        decode_plain({buffer_.data(), buffer_.size()}, leaf_.type,
                     static_cast<size_t>(d.num_values), dictionary_, page_what());
        has_dictionary_ = true;
    }

    // Levels with the v1 layout: a 4-byte length, then the RLE / bit-packed hybrid.
    size_t read_levels_v1(ByteSpan in, Encoding encoding, int max_level, size_t count,
                          std::vector<uint16_t>& levels, const char* kind) {
        check(encoding == Encoding::kRle,
              "{}: {} level encoding {} is not supported (RLE expected)", page_what(), kind,
              name_of(encoding));
        check(in.size >= 4, "{}: {} levels are cut off", page_what(), kind);
        uint32_t n;
        std::memcpy(&n, in.data, 4);
        check(n <= in.size - 4, "{}: {} levels of {} bytes, {} left in the page", page_what(), kind,
              n, in.size - 4);
        read_levels({in.data + 4, n}, max_level, count, levels, kind);
        return 4 + n;
    }

    void read_levels(ByteSpan in, int max_level, size_t count, std::vector<uint16_t>& levels,
                     const char* kind) {
        scratch_.clear();
        decode_rle_hybrid(in, bit_width_of(max_level), count, scratch_, page_what());
        // if + fail rather than check(): check() would format page_what() for every level.
        for (const uint32_t v : scratch_) {
            if (v > static_cast<uint32_t>(max_level)) {
                fail("{}: {} level {} is over the maximum {}", page_what(), kind, v, max_level);
            }
            levels.push_back(static_cast<uint16_t>(v));
        }
    }

    size_t page_values(int32_t num_values) {
        check(num_values <= kMaxPageValues, "{}: a page of {} values (at most {} are read)",
              page_what(), num_values, kMaxPageValues);
        check(num_values >= 0 && static_cast<uint64_t>(num_values) <=
                                     static_cast<uint64_t>(meta_.num_values) - out_.entries,
              "{}: a page of {} values, {} of the chunk's {} left", page_what(), num_values,
              static_cast<uint64_t>(meta_.num_values) - out_.entries, meta_.num_values);
        return static_cast<size_t>(num_values);
    }

    // The chunk's first entry must start a row (rows never span row groups).
    void check_first_rep(size_t first) {
        if (leaf_.max_rep > 0 && first == 0 && !out_.rep.empty()) {
            check(out_.rep[0] == 0, "{}: the chunk's first value continues a row", page_what());
        }
    }

    size_t count_present(size_t first) const {
        if (leaf_.max_def == 0) return out_.entries - first;
        return static_cast<size_t>(std::count(out_.def.begin() + static_cast<ptrdiff_t>(first),
                                              out_.def.end(),
                                              static_cast<uint16_t>(leaf_.max_def)));
    }

    void read_data_v1(const PageHeader& h, const uint8_t* data, size_t size) {
        const DataPageHeader& d = *h.data_page;
        const size_t n = page_values(d.num_values);
        decompress(meta_.codec, data, size, static_cast<size_t>(h.uncompressed_page_size), buffer_,
                   page_what());
        ByteSpan in{buffer_.data(), buffer_.size()};
        size_t pos = 0;
        const size_t first = out_.entries;
        if (leaf_.max_rep > 0) {
            pos += read_levels_v1(in, d.repetition_level_encoding, leaf_.max_rep, n, out_.rep,
                                  "repetition");
        }
        if (leaf_.max_def > 0) {
            pos += read_levels_v1({in.data + pos, in.size - pos}, d.definition_level_encoding,
                                  leaf_.max_def, n, out_.def, "definition");
        }
        out_.entries += n;
        check_first_rep(first);
        read_values(d.encoding, {in.data + pos, in.size - pos}, count_present(first));
    }

    void read_data_v2(const PageHeader& h, const uint8_t* data, size_t size) {
        const DataPageHeaderV2& d = *h.data_page_v2;
        const size_t n = page_values(d.num_values);
        const int64_t rep_bytes = d.repetition_levels_byte_length;
        const int64_t def_bytes = d.definition_levels_byte_length;
        check(rep_bytes >= 0 && def_bytes >= 0 &&
                  static_cast<uint64_t>(rep_bytes + def_bytes) <= size &&
                  rep_bytes + def_bytes <= h.uncompressed_page_size,
              "{}: levels of {} + {} bytes in a page of {}", page_what(), rep_bytes, def_bytes,
              size);
        const size_t first = out_.entries;
        if (leaf_.max_rep > 0) {
            read_levels({data, static_cast<size_t>(rep_bytes)}, leaf_.max_rep, n, out_.rep,
                        "repetition");
        }
        if (leaf_.max_def > 0) {
            read_levels({data + rep_bytes, static_cast<size_t>(def_bytes)}, leaf_.max_def, n,
                        out_.def, "definition");
        }
        out_.entries += n;
        check_first_rep(first);
        const size_t levels = static_cast<size_t>(rep_bytes + def_bytes);
        const size_t values_size = static_cast<size_t>(h.uncompressed_page_size) - levels;
        // Levels are never compressed in v2; the values are unless is_compressed says not.
        const Codec codec = d.is_compressed ? meta_.codec : Codec::kUncompressed;
        decompress(codec, data + levels, size - levels, values_size, buffer_, page_what());
        read_values(d.encoding, {buffer_.data(), buffer_.size()}, count_present(first));
    }

    void read_values(Encoding encoding, ByteSpan in, size_t count) {
        ColumnValues& values = out_.values;
        const PhysicalType type = leaf_.type;
        switch (encoding) {
            case Encoding::kPlain:
                decode_plain(in, type, count, values, page_what());
                break;
            case Encoding::kPlainDictionary:
            case Encoding::kRleDictionary: {
                check(has_dictionary_, "{}: dictionary-encoded values without a dictionary page",
                      page_what());
                check(in.size >= 1, "{}: dictionary indices are cut off", page_what());
                scratch_.clear();
                decode_rle_hybrid({in.data + 1, in.size - 1}, in.data[0], count, scratch_,
                                  page_what());
                const size_t dict_size = dictionary_.size();
                for (const uint32_t index : scratch_) {
                    if (index >= dict_size) {
                        fail("{}: dictionary index {} of a dictionary of {}", page_what(), index,
                             dict_size);
                    }
                    if (type == PhysicalType::kByteArray) {
                        // A few index bytes can repeat a long string many times.
                        string_bytes_ += dictionary_.strings[index].size();
                        if (string_bytes_ > kMaxChunkStringBytes) {
                            fail("{}: the chunk's strings exceed {} bytes", page_what(),
                                 kMaxChunkStringBytes);
                        }
                    }
                    values.append_from(dictionary_, index);
                }
                break;
            }
            case Encoding::kRle: {
                check(type == PhysicalType::kBoolean, "{}: RLE values of type {} (only BOOLEAN)",
                      page_what(), name_of(type));
                check(in.size >= 4, "{}: RLE values are cut off", page_what());
                uint32_t n;
                std::memcpy(&n, in.data, 4);
                check(n <= in.size - 4, "{}: RLE values of {} bytes, {} left", page_what(), n,
                      in.size - 4);
                scratch_.clear();
                decode_rle_hybrid({in.data + 4, n}, 1, count, scratch_, page_what());
                for (const uint32_t v : scratch_) values.ints.push_back(v);
                break;
            }
            case Encoding::kDeltaBinaryPacked:
                check(type == PhysicalType::kInt32 || type == PhysicalType::kInt64,
                      "{}: DELTA_BINARY_PACKED values of type {}", page_what(), name_of(type));
                decode_delta_binary_packed(in, count, type == PhysicalType::kInt32, values.ints,
                                           page_what());
                break;
            case Encoding::kDeltaLengthByteArray:
                check(type == PhysicalType::kByteArray, "{}: DELTA_LENGTH_BYTE_ARRAY values of {}",
                      page_what(), name_of(type));
                decode_delta_length_byte_array(in, count, values.strings, page_what());
                break;
            case Encoding::kDeltaByteArray:
                check(type == PhysicalType::kByteArray, "{}: DELTA_BYTE_ARRAY values of {}",
                      page_what(), name_of(type));
                // A quarter of the chunk's budget: a few bytes of prefix lengths can repeat a
                // long value many times.
                decode_delta_byte_array(in, count, values.strings, page_what(),
                                        kMaxChunkStringBytes / 4);
                break;
            default:
                fail("{}: value encoding {} is not supported", page_what(), name_of(encoding));
        }
    }

    const ColumnMetaData& meta_;
    const LeafInfo& leaf_;
    LeafData& out_;
    const std::string& what_;
    ColumnValues dictionary_;
    bool has_dictionary_ = false;
    std::vector<uint8_t> buffer_;
    std::vector<uint32_t> scratch_;
    uint64_t string_bytes_ = 0;
    size_t page_ = 0;
};

}  // namespace

void read_column_chunk(const uint8_t* file, size_t file_size, const ColumnChunk& chunk,
                       const LeafInfo& leaf, LeafData& out, const std::string& what) {
    check(chunk.file_path.empty(), "{}: the column's data is in another file ({}); not supported",
          what, chunk.file_path);
    check(!chunk.encrypted, "{}: the column is encrypted; not supported", what);
    check(chunk.has_meta, "{}: the column chunk has no metadata", what);
    ChunkReader(chunk, leaf, out, what).read(file, file_size);
}

}  // namespace greenmoe::parquet

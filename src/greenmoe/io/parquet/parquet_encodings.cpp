// Decoders of Parquet's encodings, every length and count checked against the bytes left.
#include "greenmoe/io/parquet/parquet_encodings.h"

#include <cstring>

#include "greenmoe/core/error.h"

namespace greenmoe::parquet {

namespace {

uint64_t read_uleb(ByteSpan in, size_t& pos, const std::string& what) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        check(pos < in.size, "{}: encoded data ends inside a varint", what);
        const uint8_t b = in.data[pos++];
        check(shift < 63 || b <= 1, "{}: a varint longer than 64 bits", what);
        value |= static_cast<uint64_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return value;
    }
    fail("{}: a varint longer than 64 bits", what);
}

int64_t read_zigzag(ByteSpan in, size_t& pos, const std::string& what) {
    const uint64_t v = read_uleb(in, pos, what);
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
}

// `width` (0..64) bits starting at bit `bit` of `p`, least significant bit first. The caller
// has checked that the bytes exist.
uint64_t unpack_bits(const uint8_t* p, uint64_t bit, int width) {
    if (width == 0) return 0;
    uint64_t value = 0;
    int got = 0;
    const uint8_t* byte = p + bit / 8;
    int shift = static_cast<int>(bit % 8);
    while (got < width) {
        const int take = std::min(8 - shift, width - got);
        const uint64_t part = (static_cast<uint64_t>(*byte) >> shift) & ((1u << take) - 1);
        value |= part << got;
        got += take;
        shift = 0;
        ++byte;
    }
    return value;
}

}  // namespace

size_t ColumnValues::size() const {
    switch (type) {
        case PhysicalType::kFloat:
        case PhysicalType::kDouble:
            return reals.size();
        case PhysicalType::kByteArray:
            return strings.size();
        default:
            return ints.size();
    }
}

void ColumnValues::clear() {
    ints.clear();
    reals.clear();
    strings.clear();
}

void ColumnValues::append_from(const ColumnValues& dictionary, size_t index) {
    switch (type) {
        case PhysicalType::kFloat:
        case PhysicalType::kDouble:
            reals.push_back(dictionary.reals[index]);
            return;
        case PhysicalType::kByteArray:
            strings.push_back(dictionary.strings[index]);
            return;
        default:
            ints.push_back(dictionary.ints[index]);
    }
}

size_t decode_rle_hybrid(ByteSpan in, int bit_width, size_t count, std::vector<uint32_t>& out,
                         const std::string& what) {
    check(bit_width >= 0 && bit_width <= 32, "{}: RLE bit width {} is out of range 0..32", what,
          bit_width);
    const size_t value_bytes = static_cast<size_t>(bit_width + 7) / 8;
    size_t pos = 0, done = 0;
    out.reserve(out.size() + count);
    while (done < count) {
        const uint64_t header = read_uleb(in, pos, what);
        if (header & 1) {
            // Bit-packed: groups of 8 values, bit_width bytes per group.
            const uint64_t groups = header >> 1;
            check(groups > 0 && groups <= (in.size - pos) / std::max(bit_width, 1),
                  "{}: a bit-packed run longer than the data left", what);
            const size_t values = static_cast<size_t>(groups) * 8;
            const uint8_t* p = in.data + pos;
            const size_t take = std::min(values, count - done);
            for (size_t i = 0; i < take; ++i) {
                out.push_back(static_cast<uint32_t>(unpack_bits(p, i * bit_width, bit_width)));
            }
            done += take;
            pos += static_cast<size_t>(groups) * static_cast<size_t>(bit_width);
        } else {
            const uint64_t run = header >> 1;
            check(run > 0, "{}: an RLE run of length 0", what);
            check(value_bytes <= in.size - pos, "{}: an RLE run's value is cut off", what);
            uint32_t value = 0;
            for (size_t b = 0; b < value_bytes; ++b) {
                value |= static_cast<uint32_t>(in.data[pos + b]) << (8 * b);
            }
            pos += value_bytes;
            check(bit_width == 32 || value >> bit_width == 0, "{}: an RLE value wider than {} bits",
                  what, bit_width);
            const size_t take = static_cast<size_t>(std::min<uint64_t>(run, count - done));
            out.insert(out.end(), take, value);
            done += take;
        }
    }
    return pos;
}

size_t decode_plain(ByteSpan in, PhysicalType type, size_t count, ColumnValues& out,
                    const std::string& what) {
    size_t pos = 0;
    auto need = [&](uint64_t bytes) {
        check(bytes <= in.size - pos, "{}: PLAIN values end {} bytes early", what,
              bytes - (in.size - pos));
    };
    switch (type) {
        case PhysicalType::kBoolean: {
            need((static_cast<uint64_t>(count) + 7) / 8);
            for (size_t i = 0; i < count; ++i) out.ints.push_back((in.data[i / 8] >> (i % 8)) & 1);
            return (count + 7) / 8;
        }
        case PhysicalType::kInt32: {
            need(uint64_t{4} * count);
            for (size_t i = 0; i < count; ++i) {
                int32_t v;
                std::memcpy(&v, in.data + 4 * i, 4);
                out.ints.push_back(v);
            }
            return 4 * count;
        }
        case PhysicalType::kInt64: {
            need(uint64_t{8} * count);
            const size_t base = out.ints.size();
            out.ints.resize(base + count);
            if (count > 0) std::memcpy(out.ints.data() + base, in.data, 8 * count);
            return 8 * count;
        }
        case PhysicalType::kFloat: {
            need(uint64_t{4} * count);
            for (size_t i = 0; i < count; ++i) {
                float v;
                std::memcpy(&v, in.data + 4 * i, 4);
                out.reals.push_back(v);
            }
            return 4 * count;
        }
        case PhysicalType::kDouble: {
            need(uint64_t{8} * count);
            const size_t base = out.reals.size();
            out.reals.resize(base + count);
            if (count > 0) std::memcpy(out.reals.data() + base, in.data, 8 * count);
            return 8 * count;
        }
        case PhysicalType::kByteArray: {
            for (size_t i = 0; i < count; ++i) {
                need(4);
                uint32_t n;
                std::memcpy(&n, in.data + pos, 4);
                pos += 4;
                need(n);
                out.strings.emplace_back(reinterpret_cast<const char*>(in.data + pos), n);
                pos += n;
            }
            return pos;
        }
        case PhysicalType::kInt96:
        case PhysicalType::kFixedLenByteArray:
            break;
    }
    fail("{}: physical type {} is not supported", what, name_of(type));
}

size_t decode_delta_binary_packed(ByteSpan in, size_t count, bool is_int32,
                                  std::vector<int64_t>& out, const std::string& what) {
    size_t pos = 0;
    const uint64_t block_size = read_uleb(in, pos, what);
    const uint64_t miniblocks = read_uleb(in, pos, what);
    const uint64_t total = read_uleb(in, pos, what);
    int64_t value = read_zigzag(in, pos, what);
    check(block_size > 0 && block_size % 128 == 0 && block_size <= (1u << 20),
          "{}: DELTA_BINARY_PACKED block size {} is not a positive multiple of 128", what,
          block_size);
    check(miniblocks > 0 && block_size % miniblocks == 0 && (block_size / miniblocks) % 32 == 0,
          "{}: DELTA_BINARY_PACKED has {} miniblocks per block of {}, not multiples of 32 values",
          what, miniblocks, block_size);
    check(total == count, "{}: DELTA_BINARY_PACKED holds {} values, the page needs {}", what, total,
          count);
    const uint64_t per_mini = block_size / miniblocks;
    // Arithmetic wraps (unsigned), as the writers' does; INT32 columns wrap at 32 bits.
    auto wrap = [&](uint64_t v) -> int64_t {
        return is_int32 ? static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(v)))
                        : static_cast<int64_t>(v);
    };
    out.reserve(out.size() + count);
    if (count == 0) return pos;
    out.push_back(wrap(static_cast<uint64_t>(value)));
    size_t done = 1;
    while (done < count) {
        const int64_t min_delta = read_zigzag(in, pos, what);
        check(miniblocks <= in.size - pos, "{}: DELTA_BINARY_PACKED bit widths cut off", what);
        const uint8_t* widths = in.data + pos;
        pos += miniblocks;
        for (uint64_t m = 0; m < miniblocks && done < count; ++m) {
            const int width = widths[m];
            check(width <= 64, "{}: DELTA_BINARY_PACKED bit width {} is over 64", what, width);
            const uint64_t bytes = per_mini * static_cast<uint64_t>(width) / 8;
            check(bytes <= in.size - pos, "{}: a DELTA_BINARY_PACKED miniblock is cut off", what);
            const size_t take = static_cast<size_t>(std::min<uint64_t>(per_mini, count - done));
            for (size_t i = 0; i < take; ++i) {
                const uint64_t delta =
                    unpack_bits(in.data + pos, i * static_cast<uint64_t>(width), width);
                value =
                    wrap(static_cast<uint64_t>(value) + static_cast<uint64_t>(min_delta) + delta);
                out.push_back(value);
            }
            done += take;
            pos += bytes;
        }
    }
    return pos;
}

size_t decode_delta_length_byte_array(ByteSpan in, size_t count, std::vector<std::string>& out,
                                      const std::string& what) {
    std::vector<int64_t> lengths;
    size_t pos = decode_delta_binary_packed(in, count, true, lengths, what);
    out.reserve(out.size() + count);
    for (const int64_t n : lengths) {
        check(n >= 0 && static_cast<uint64_t>(n) <= in.size - pos,
              "{}: a DELTA_LENGTH_BYTE_ARRAY string of {} bytes, {} left", what, n, in.size - pos);
        out.emplace_back(reinterpret_cast<const char*>(in.data + pos), static_cast<size_t>(n));
        pos += static_cast<size_t>(n);
    }
    return pos;
}

size_t decode_delta_byte_array(ByteSpan in, size_t count, std::vector<std::string>& out,
                               const std::string& what, uint64_t max_bytes) {
    std::vector<int64_t> prefixes;
    size_t pos = decode_delta_binary_packed(in, count, true, prefixes, what);
    std::vector<std::string> suffixes;
    pos += decode_delta_length_byte_array({in.data + pos, in.size - pos}, count, suffixes, what);
    std::string previous;
    uint64_t total = 0;
    out.reserve(out.size() + count);
    for (size_t i = 0; i < count; ++i) {
        const int64_t p = prefixes[i];
        check(p >= 0 && static_cast<uint64_t>(p) <= previous.size(),
              "{}: DELTA_BYTE_ARRAY prefix of {} bytes, the previous value has {}", what, p,
              previous.size());
        total += static_cast<uint64_t>(p) + suffixes[i].size();
        check(total <= max_bytes, "{}: DELTA_BYTE_ARRAY strings exceed {} bytes", what, max_bytes);
        std::string value = previous.substr(0, static_cast<size_t>(p));
        value += suffixes[i];
        out.push_back(value);
        previous = std::move(value);
    }
    return pos;
}

}  // namespace greenmoe::parquet

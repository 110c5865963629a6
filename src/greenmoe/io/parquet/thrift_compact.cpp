// Thrift compact protocol: varints, zigzag integers, delta-coded field headers.
#include "greenmoe/io/parquet/thrift_compact.h"

#include <cstring>

#include "greenmoe/core/error.h"

namespace greenmoe::parquet {

void ThriftReader::fail_here(std::string_view problem) const {
    fail("{}: {} (metadata byte {})", what_, problem, pos_);
}

uint8_t ThriftReader::read_byte() {
    if (pos_ >= size_) fail_here("truncated Thrift metadata");
    return data_[pos_++];
}

uint64_t ThriftReader::read_varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        const uint8_t b = read_byte();
        // The tenth byte may only hold the top bit of a 64-bit value.
        if (shift == 63 && b > 1) fail_here("a varint longer than 64 bits");
        value |= static_cast<uint64_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return value;
    }
    fail_here("a varint longer than 64 bits");
}

int64_t ThriftReader::read_i64() {
    const uint64_t v = read_varint();
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));  // zigzag
}

int32_t ThriftReader::read_i32() {
    const int64_t v = read_i64();
    if (v < INT32_MIN || v > INT32_MAX) fail_here("a 32-bit integer out of range");
    return static_cast<int32_t>(v);
}

double ThriftReader::read_double() {
    if (size_ - pos_ < 8) fail_here("truncated Thrift metadata");
    double d;
    std::memcpy(&d, data_ + pos_, 8);
    pos_ += 8;
    return d;
}

std::string_view ThriftReader::read_binary() {
    const uint64_t n = read_varint();
    if (n > size_ - pos_) fail_here("a string longer than the metadata left");
    const std::string_view s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
}

void ThriftReader::begin_struct() {
    if (last_ids_.size() >= kMaxDepth) fail_here("structures nested too deeply");
    last_ids_.push_back(last_id_);
    last_id_ = 0;
}

void ThriftReader::end_struct() {
    last_id_ = last_ids_.back();
    last_ids_.pop_back();
}

ThriftField ThriftReader::read_field() {
    const uint8_t b = read_byte();
    ThriftField field;
    field.type = static_cast<ThriftType>(b & 0x0f);
    if (field.type == ThriftType::kStop) return field;
    if ((b & 0x0f) > 12) fail_here("an unknown Thrift field type");
    const int delta = b >> 4;
    if (delta != 0) {
        const int id = last_id_ + delta;
        if (id > INT16_MAX) fail_here("a field id out of range");
        field.id = static_cast<int16_t>(id);
    } else {
        const int32_t id = read_i32();
        if (id < INT16_MIN || id > INT16_MAX) fail_here("a field id out of range");
        field.id = static_cast<int16_t>(id);
    }
    last_id_ = field.id;
    return field;
}

ThriftList ThriftReader::read_list_header() {
    const uint8_t b = read_byte();
    ThriftList list;
    list.element = static_cast<ThriftType>(b & 0x0f);
    if ((b & 0x0f) > 12 || list.element == ThriftType::kStop) {
        fail_here("an unknown Thrift list element type");
    }
    uint64_t n = b >> 4;
    if (n == 15) n = read_varint();
    // Every element takes at least one byte, so a longer list is a forged count.
    if (n > size_ - pos_) fail_here("a list longer than the metadata left");
    list.size = static_cast<uint32_t>(n);
    return list;
}

bool ThriftReader::read_bool(const ThriftField& field) {
    if (field.type == ThriftType::kTrue) return true;
    if (field.type == ThriftType::kFalse) return false;
    fail_here("expected a boolean field");
}

bool ThriftReader::read_bool_element() {
    return read_byte() == 1;
}

void ThriftReader::skip(ThriftType type) {
    skip(type, 0);
}

void ThriftReader::skip(ThriftType type, int depth) {
    if (depth > kMaxDepth) fail_here("values nested too deeply");
    switch (type) {
        case ThriftType::kTrue:
        case ThriftType::kFalse:
            return;
        case ThriftType::kByte:
            read_byte();
            return;
        case ThriftType::kI16:
        case ThriftType::kI32:
        case ThriftType::kI64:
            read_varint();
            return;
        case ThriftType::kDouble:
            read_double();
            return;
        case ThriftType::kBinary:
            read_binary();
            return;
        case ThriftType::kList:
        case ThriftType::kSet: {
            const ThriftList list = read_list_header();
            for (uint32_t i = 0; i < list.size; ++i) {
                // List booleans are a byte each, not folded into a type.
                if (list.element == ThriftType::kTrue || list.element == ThriftType::kFalse) {
                    read_byte();
                } else {
                    skip(list.element, depth + 1);
                }
            }
            return;
        }
        case ThriftType::kMap: {
            const uint64_t n = read_varint();
            if (n == 0) return;
            if (n > size_ - pos_) fail_here("a map longer than the metadata left");
            const uint8_t types = read_byte();
            const auto key = static_cast<ThriftType>(types >> 4);
            const auto value = static_cast<ThriftType>(types & 0x0f);
            for (uint64_t i = 0; i < n; ++i) {
                for (const ThriftType t : {key, value}) {
                    if (t == ThriftType::kTrue || t == ThriftType::kFalse) {
                        read_byte();
                    } else {
                        skip(t, depth + 1);
                    }
                }
            }
            return;
        }
        case ThriftType::kStruct: {
            begin_struct();
            while (true) {
                const ThriftField f = read_field();
                if (f.type == ThriftType::kStop) break;
                skip(f.type, depth + 1);
            }
            end_struct();
            return;
        }
        case ThriftType::kStop:
            break;
    }
    fail_here("an unknown Thrift type");
}

}  // namespace greenmoe::parquet

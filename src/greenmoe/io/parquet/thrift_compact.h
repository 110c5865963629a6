// A bounds-checked reader of Thrift's compact protocol, the encoding of Parquet's metadata.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace greenmoe::parquet {

// Compact protocol type codes (thrift/doc/specs/thrift-compact-protocol.md).
enum class ThriftType : uint8_t {
    kStop = 0,
    kTrue = 1,
    kFalse = 2,
    kByte = 3,
    kI16 = 4,
    kI32 = 5,
    kI64 = 6,
    kDouble = 7,
    kBinary = 8,
    kList = 9,
    kSet = 10,
    kMap = 11,
    kStruct = 12,
};

struct ThriftField {
    int16_t id = 0;
    ThriftType type = ThriftType::kStop;
};

struct ThriftList {
    uint32_t size = 0;
    ThriftType element = ThriftType::kStop;
};

// Reads values from [data, data + size). Every read checks the bounds and throws Error
// "<what>: <problem>"; `what` names the file and the structure being read.
class ThriftReader {
  public:
    ThriftReader(const uint8_t* data, size_t size, std::string what)
        : data_(data), size_(size), what_(std::move(what)) {}

    // Struct fields: begin_struct(), then read_field() until it returns a kStop field, then
    // end_struct(). A boolean field's value is in its type (kTrue / kFalse).
    void begin_struct();
    ThriftField read_field();
    void end_struct();

    ThriftList read_list_header();
    bool read_bool(const ThriftField& field);  // a boolean field
    bool read_bool_element();                  // a boolean list element (one byte)
    int32_t read_i32();
    int64_t read_i64();
    double read_double();
    std::string_view read_binary();
    // Skips a value of any type (nested at most kMaxDepth deep).
    void skip(ThriftType type);

    size_t position() const { return pos_; }
    [[noreturn]] void fail_here(std::string_view problem) const;

  private:
    uint64_t read_varint();
    uint8_t read_byte();
    void skip(ThriftType type, int depth);

    static constexpr int kMaxDepth = 64;
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
    std::string what_;
    std::vector<int16_t> last_ids_;  // the enclosing structs' last field ids
    int16_t last_id_ = 0;
};

}  // namespace greenmoe::parquet

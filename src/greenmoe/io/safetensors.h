// safetensors files: memory-mapped reading with strict header validation, atomic writing.
// Format: u64 little-endian header length N, N bytes of JSON header {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "greenmoe/io/mapped_file.h"

namespace greenmoe {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType dtype);             // "F32", "BF16", ...
size_t dtype_size(DType dtype);                  // bytes per element
DType dtype_from_name(const std::string& name);  // throws Error on an unknown name

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    size_t offset = 0;  // from the start of the data section
    size_t nbytes = 0;
    int64_t numel() const;
};

// Validation done at open: header length within the file, JSON well formed, every entry
// has a known dtype, a shape of non-negative ints and data_offsets [begin, end] with
// begin ≤ end ≤ data size, shape × dtype size = end − begin, no two tensors overlap.
// Each failure throws Error naming the file (and tensor) and what was expected.
class SafetensorsFile {
  public:
    static SafetensorsFile open(const std::filesystem::path& path);

    const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order
    const TensorInfo* find(const std::string& name) const;               // null if absent
    const TensorInfo& get(const std::string& name) const;                // throws if absent
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::byte* data(const TensorInfo& t) const { return data_ + t.offset; }
    const std::filesystem::path& path() const { return path_; }

    // Reads a tensor converted to float32 (F32, F16, BF16, F64 accepted), checking
    // that its shape equals `expected_shape` when that is non-empty.
    std::vector<float> read_f32(const std::string& name,
                                const std::vector<int64_t>& expected_shape = {}) const;
    void read_f32_into(const std::string& name, float* out,
                       const std::vector<int64_t>& expected_shape) const;

    SafetensorsFile(SafetensorsFile&&) noexcept;
    SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
    ~SafetensorsFile();

  private:
    SafetensorsFile() = default;
    std::filesystem::path path_;
    MappedFile file_;
    const std::byte* data_ = nullptr;  // start of the data section inside file_
    std::vector<TensorInfo> tensors_;
    std::map<std::string, size_t> index_;
    std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    const void* data = nullptr;  // numel × dtype_size bytes
};

// Writes a safetensors file atomically (temp file in the same folder, fsync, rename).
// Tensors are stored in the given order, 8-byte aligned header as the reference does.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace greenmoe

// NumPy .npy files (format versions 1.0–3.0): validated reading and atomic writing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace greenmoe {

// The parsed header of a .npy file. `descr` is NumPy's type string, e.g. "<f4", "<u2".
struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    std::vector<int64_t> shape;
    size_t data_offset = 0;  // where the array data starts, from the start of the file
    int64_t numel() const;
};

// Parses and validates the header at the start of `bytes` (magic "\x93NUMPY", version,
// header length, the Python dict literal with exactly descr/fortran_order/shape).
// `path` only names the file in error messages.
NpyHeader parse_npy_header(const std::byte* bytes, size_t size, const std::filesystem::path& path);

// Bytes per element of a simple descr such as "<f4", "|u1", "|b1"; throws Error otherwise.
size_t npy_item_size(const std::string& descr, const std::filesystem::path& path);

struct NpyArray {
    std::string descr;
    std::vector<int64_t> shape;
    std::vector<std::byte> data;  // C order, numel × item size bytes, as stored
    int64_t numel() const;
    // The values as float32; accepts "<f4", "<f8" and "<f2", throws Error otherwise.
    std::vector<float> to_f32() const;
};

// Reads a C-order .npy file with a simple dtype. Throws Error naming the file on a bad
// header, Fortran order, or a data section whose length does not match the shape.
NpyArray read_npy(const std::filesystem::path& path);

// Writes a C-order array atomically as .npy version 1.0 (2.0 if the header would not fit),
// the header padded so that the data starts at a multiple of 64 bytes, as NumPy does.
void write_npy(const std::filesystem::path& path, const float* data,
               const std::vector<int64_t>& shape);
void write_npy(const std::filesystem::path& path, const double* data,
               const std::vector<int64_t>& shape);
void write_npy(const std::filesystem::path& path, const uint16_t* data,
               const std::vector<int64_t>& shape);
// Any simple little-endian or byte-sized descr; `data` holds numel × item size bytes.
void write_npy_raw(const std::filesystem::path& path, const std::string& descr, const void* data,
                   const std::vector<int64_t>& shape, bool fortran_order = false);

}  // namespace greenmoe

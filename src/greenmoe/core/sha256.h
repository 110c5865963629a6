// SHA-256 (FIPS 180-4), for verifying downloaded files against published checksums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace greenmoe {

class Sha256 {
  public:
    Sha256();
    void update(const void* data, size_t size);
    std::array<uint8_t, 32> digest();  // finalises; the object must not be updated after
    std::string hex_digest();

  private:
    void compress(const uint8_t* block);
    std::array<uint32_t, 8> h_;
    std::array<uint8_t, 64> buffer_{};
    size_t buffered_ = 0;
    uint64_t length_ = 0;
};

std::string sha256_hex(std::string_view data);
// Hex digest of a file's contents; throws Error naming the file if it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace greenmoe

// Shared by the libFuzzer targets: the input as a file, for readers that take a path.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace greenmoe::fuzz {

// A folder of this process under /dev/shm (or the temp folder), made once, reused (each
// input is written over the same file names) and removed at exit.
class ScratchDir {
  public:
    ScratchDir() {
        std::filesystem::path base = "/dev/shm";
        if (!std::filesystem::is_directory(base)) base = std::filesystem::temp_directory_path();
        std::string name = "greenmoe-fuzz-";
        name += std::to_string(::getpid());
        path_ = base / name;
        std::filesystem::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

inline const std::filesystem::path& scratch_dir() {
    static const ScratchDir dir;
    return dir.path();
}

// Writes the input to scratch_dir()/name and returns that path.
inline std::filesystem::path write_input(const uint8_t* data, size_t size, const char* name) {
    const std::filesystem::path path = scratch_dir() / name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) std::abort();
    return path;
}

// Touches every byte of a span, so that a range past a mapped file faults inside the target.
inline uint64_t checksum(const std::byte* data, size_t size) {
    uint64_t sum = 0;
    for (size_t i = 0; i < size; ++i) sum = sum * 31 + static_cast<uint64_t>(data[i]);
    return sum;
}

// A broken promise of a reader that returned normally: a crash libFuzzer reports.
inline void require(bool condition) {
    if (!condition) __builtin_trap();
}

}  // namespace greenmoe::fuzz

// Writing files so that a crash never leaves a half-written one: temp file, fsync, rename.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>

namespace greenmoe {

// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename, fsync of the
// folder. Throws Error naming the path on any failure (and removes the temp file).
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// Streaming variant for large files: write() appends, commit() makes it appear at `path`.
// If destroyed without commit() the temp file is removed and `path` is untouched.
class AtomicFileWriter {
  public:
    explicit AtomicFileWriter(std::filesystem::path path);
    ~AtomicFileWriter();
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

    void write(const void* data, size_t size);
    void commit();

  private:
    std::filesystem::path path_, temp_path_;
    int fd_ = -1;
};

// Reads a whole file; throws Error naming it when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace greenmoe

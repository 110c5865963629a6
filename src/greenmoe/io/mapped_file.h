// A whole file mapped read-only into memory (RAII), so that readers touch only the pages they use.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>

namespace greenmoe {

class MappedFile {
  public:
    MappedFile() = default;  // maps nothing: size() == 0

    // Maps `path` read-only. An empty file is allowed (size() == 0, data() == nullptr).
    // Throws Error naming the file when it is missing, not a regular file, or unmappable.
    static MappedFile open(const std::filesystem::path& path);

    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();

    const std::byte* data() const { return data_; }
    size_t size() const { return size_; }
    std::span<const std::byte> bytes() const { return {data_, size_}; }
    const std::filesystem::path& path() const { return path_; }

  private:
    void unmap() noexcept;

    std::filesystem::path path_;
    const std::byte* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace greenmoe

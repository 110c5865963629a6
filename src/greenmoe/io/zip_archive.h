// Members of a .zip file, read with libzip: the form ARC and WinoGrande are released in, so
// a user points greenmoe at the archive they downloaded instead of unpacking it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace greenmoe {

class ZipArchive {
  public:
    // Throws Error naming the file when it cannot be opened or is not a zip archive.
    static ZipArchive open(const std::filesystem::path& path);
    ~ZipArchive();
    ZipArchive(ZipArchive&&) noexcept;
    ZipArchive& operator=(ZipArchive&&) noexcept;

    const std::filesystem::path& path() const { return path_; }
    // Member names as stored ("ARC-V1-Feb2018-2/ARC-Easy/ARC-Easy-Test.jsonl").
    const std::vector<std::string>& members() const { return members_; }
    bool contains(const std::string& member) const;
    // The member's bytes, its CRC checked. Throws Error naming the archive and the member
    // when it is missing, larger than max_bytes, compressed with an unsupported method or
    // damaged.
    std::string read(const std::string& member, uint64_t max_bytes = uint64_t(1) << 31) const;

  private:
    struct Handle;
    ZipArchive(std::filesystem::path path, std::unique_ptr<Handle> handle);
    std::filesystem::path path_;
    std::unique_ptr<Handle> handle_;
    std::vector<std::string> members_;
};

// A path that passes through an archive as if it were a folder, "data/ARC.zip/ARC-Easy/x.jsonl":
// the archive ("data/ARC.zip", the first component that is a regular file named *.zip) and
// the member inside ("ARC-Easy/x.jsonl"); nullopt when no component is.
struct ArchiveMember {
    std::filesystem::path archive;
    std::string member;
};
std::optional<ArchiveMember> split_archive_path(const std::filesystem::path& path);

}  // namespace greenmoe

// Token shards on disk: llm.c's .bin (256 × int32 header, magic 20240520, version 1,
// token count, then uint16 tokens; or llm.c's layout for larger vocabularies, magic
// 20240801, version 7, uint32 tokens) and build-nanogpt's .npy (1-D uint16 or uint32 array).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "greenmoe/io/mapped_file.h"

namespace greenmoe {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderInts = 256;
// llm.c's header for uint32 tokens (its "llama-3" data files), for vocabularies over 65,536.
inline constexpr int32_t kShardMagic32 = 20240801;
inline constexpr int32_t kShardVersion32 = 7;

// Writes tokens as an llm.c .bin shard, atomically (temp file, fsync, rename).
void write_token_shard(const std::filesystem::path& path, const uint16_t* tokens, size_t count);
void write_token_shard(const std::filesystem::path& path, const uint32_t* tokens, size_t count);

// A read-only, memory-mapped shard of either format. The format is chosen by content
// (.npy magic "\x93NUMPY" or the llm.c magic), not by extension. Every inconsistency
// (bad magic, version, dtype, shape, a token count that does not match the file size,
// a truncated file) throws Error naming the file and what was expected.
class TokenShard {
  public:
    static TokenShard open(const std::filesystem::path& path);

    // 16-bit token ids (GPT-2's vocabulary). Throws Error for a shard of 32-bit ids, naming it.
    const uint16_t* tokens() const;
    // 32-bit token ids; Throws Error for a shard of 16-bit ids.
    const uint32_t* tokens32() const;
    bool wide() const { return width_ == 4; }
    uint32_t token(size_t i) const {
        return wide() ? static_cast<const uint32_t*>(data_)[i]
                      : static_cast<const uint16_t*>(data_)[i];
    }
    size_t size() const { return count_; }
    const std::filesystem::path& path() const { return path_; }

    TokenShard(TokenShard&&) noexcept;
    TokenShard& operator=(TokenShard&&) noexcept;
    ~TokenShard();

  private:
    TokenShard() = default;
    std::filesystem::path path_;
    MappedFile file_;
    const void* data_ = nullptr;
    size_t width_ = 2;  // bytes per token
    size_t count_ = 0;
};

// Expands a shard pattern: a file, a folder (all .bin/.npy inside), or a glob with * and ?
// in the file-name part (fnmatch). Sorted by name. Hidden files (a leading dot, such as
// AtomicFileWriter's temp files) are never listed. Throws Error when nothing matches.
std::vector<std::filesystem::path> list_token_shards(const std::string& pattern);

}  // namespace greenmoe

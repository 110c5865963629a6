// llm.c .bin and build-nanogpt .npy token shards (see token_shard.h).
#include "greenmoe/io/token_shard.h"

#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <string_view>
#include <system_error>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/npy.h"

namespace greenmoe {

static_assert(std::endian::native == std::endian::little,
              "shards are little-endian and their tokens are used in place");

namespace {

constexpr size_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);
constexpr std::string_view kNpyMagic = "\x93NUMPY";

bool is_shard_name(const std::filesystem::path& p) {
    const auto ext = p.extension();
    return ext == ".bin" || ext == ".npy";
}

bool is_hidden(const std::filesystem::path& p) {
    const auto name = p.filename().string();
    return !name.empty() && name[0] == '.';
}

}  // namespace

namespace {

template <typename Token>
void write_shard(const std::filesystem::path& path, const Token* tokens, size_t count,
                 int32_t magic, int32_t version) {
    check(count <= static_cast<size_t>(std::numeric_limits<int32_t>::max()),
          "cannot write {}: {} tokens do not fit an llm.c shard (at most 2^31 - 1)", path.string(),
          count);
    check(tokens != nullptr || count == 0, "cannot write {}: no token data", path.string());
    std::array<int32_t, kShardHeaderInts> header{};
    header[0] = magic;
    header[1] = version;
    header[2] = static_cast<int32_t>(count);
    AtomicFileWriter writer(path);
    writer.write(header.data(), kShardHeaderBytes);
    if (count > 0) writer.write(tokens, count * sizeof(Token));
    writer.commit();
}

}  // namespace

void write_token_shard(const std::filesystem::path& path, const uint16_t* tokens, size_t count) {
    write_shard(path, tokens, count, kShardMagic, kShardVersion);
}

void write_token_shard(const std::filesystem::path& path, const uint32_t* tokens, size_t count) {
    write_shard(path, tokens, count, kShardMagic32, kShardVersion32);
}

const uint16_t* TokenShard::tokens() const {
    check(width_ == 2,
          "{}: the shard holds 32-bit token ids (a vocabulary over 65,536, e.g. a Hugging Face "
          "model's); greenmoe's GPT models read 16-bit GPT-2 shards",
          path_.string());
    return static_cast<const uint16_t*>(data_);
}

const uint32_t* TokenShard::tokens32() const {
    check(width_ == 4, "{}: the shard holds 16-bit token ids, not 32-bit ones", path_.string());
    return static_cast<const uint32_t*>(data_);
}

TokenShard TokenShard::open(const std::filesystem::path& path) {
    TokenShard shard;
    shard.path_ = path;
    shard.file_ = MappedFile::open(path);
    const std::string file = path.string();
    const std::byte* bytes = shard.file_.data();
    const size_t size = shard.file_.size();
    check(size > 0, "{}: empty file (expected an llm.c .bin token shard or a .npy uint16 array)",
          file);

    if (size >= kNpyMagic.size() && std::memcmp(bytes, kNpyMagic.data(), kNpyMagic.size()) == 0) {
        const NpyHeader header = parse_npy_header(bytes, size, path);
        check(header.descr == "<u2" || header.descr == "<u4",
              "{}: .npy token array has dtype '{}', expected '<u2' (uint16 GPT-2 tokens, as "
              "build-nanogpt's np.save writes them) or '<u4' (uint32)",
              file, header.descr);
        const size_t width = header.descr == "<u4" ? 4 : 2;
        check(!header.fortran_order,
              "{}: .npy token array is stored in Fortran order, expected a C-order 1-D array",
              file);
        check(header.shape.size() == 1,
              "{}: .npy token array has {} dimensions, expected a 1-D array of tokens", file,
              header.shape.size());
        const auto count = static_cast<size_t>(header.shape[0]);
        const size_t actual = size - header.data_offset;
        check(count <= std::numeric_limits<size_t>::max() / width && actual == count * width,
              "{}: .npy token array of {} tokens needs {} bytes of data, found {} bytes{}", file,
              count, count * width, actual, actual < count * width ? " (truncated file)" : "");
        check(header.data_offset % width == 0,
              "{}: .npy token data starts at offset {}, not a multiple of {}", file,
              header.data_offset, width);
        shard.count_ = count;
        shard.width_ = width;
        shard.data_ = bytes + header.data_offset;
        return shard;
    }

    int32_t magic = 0;
    std::memcpy(&magic, bytes, std::min(size, sizeof magic));
    check(size >= sizeof magic && (magic == kShardMagic || magic == kShardMagic32),
          "{}: not a token shard: expected the llm.c magic {} (or {}) or a .npy file, found {}",
          file, kShardMagic, kShardMagic32,
          size >= sizeof magic ? fmt::format("first int32 {}", magic)
                               : fmt::format("only {} bytes", size));
    check(size >= kShardHeaderBytes,
          "{}: truncated llm.c shard: the header needs {} bytes, the file has {} bytes", file,
          kShardHeaderBytes, size);
    std::array<int32_t, kShardHeaderInts> header{};
    std::memcpy(header.data(), bytes, kShardHeaderBytes);
    const bool wide = magic == kShardMagic32;
    const int32_t version = wide ? kShardVersion32 : kShardVersion;
    check(header[1] == version,
          "{}: unsupported llm.c shard version {} for magic {} (expected {}: {} tokens)", file,
          header[1], magic, version, wide ? "uint32" : "uint16 GPT-2");
    check(header[2] >= 0, "{}: llm.c shard header has a negative token count {}", file, header[2]);
    const auto count = static_cast<size_t>(header[2]);
    const size_t width = wide ? 4 : 2;
    const size_t expected = kShardHeaderBytes + count * width;
    check(size == expected,
          "{}: llm.c shard header says {} tokens, so the file should be {} bytes ({}-byte header "
          "+ {} bytes per token), but it is {} bytes{}",
          file, count, expected, kShardHeaderBytes, width, size,
          size < expected ? " (truncated file)" : " (trailing bytes)");
    shard.count_ = count;
    shard.width_ = width;
    shard.data_ = bytes + kShardHeaderBytes;
    return shard;
}

TokenShard::TokenShard(TokenShard&&) noexcept = default;
TokenShard& TokenShard::operator=(TokenShard&&) noexcept = default;
TokenShard::~TokenShard() = default;

std::vector<std::filesystem::path> list_token_shards(const std::string& pattern) {
    namespace fs = std::filesystem;
    check(!pattern.empty(), "empty shard pattern (expected a file, a folder or a glob)");
    const fs::path p(pattern);
    std::vector<fs::path> found;
    std::error_code ec;
    const std::string name = p.filename().string();
    const bool is_glob = name.find_first_of("*?[") != std::string::npos;
    try {
        if (fs::is_regular_file(p, ec)) {
            found.push_back(p);
        } else if (fs::is_directory(p, ec)) {
            for (const auto& entry : fs::directory_iterator(p)) {
                std::error_code entry_ec;
                if (entry.is_regular_file(entry_ec) && is_shard_name(entry.path()) &&
                    !is_hidden(entry.path())) {
                    found.push_back(entry.path());
                }
            }
            check(!found.empty(), "shard folder {} holds no .bin or .npy files", pattern);
        } else {
            const fs::path folder = p.parent_path();
            check(folder.string().find_first_of("*?[") == std::string::npos,
                  "shard pattern '{}': wildcards are only allowed in the file-name part", pattern);
            check(is_glob, "shard file {} does not exist", pattern);
            const fs::path dir = folder.empty() ? fs::path(".") : folder;
            check(fs::is_directory(dir, ec), "shard pattern '{}': folder {} does not exist",
                  pattern, dir.string());
            for (const auto& entry : fs::directory_iterator(dir)) {
                const std::string entry_name = entry.path().filename().string();
                std::error_code entry_ec;
                // FNM_PERIOD: a wildcard never matches a leading dot, so temp files stay out.
                if (::fnmatch(name.c_str(), entry_name.c_str(), FNM_PERIOD) == 0 &&
                    entry.is_regular_file(entry_ec)) {
                    found.push_back(folder / entry_name);
                }
            }
            check(!found.empty(), "shard pattern '{}' matches no files", pattern);
        }
    } catch (const fs::filesystem_error& e) {
        fail("shard pattern '{}': cannot list {}: {}", pattern, e.path1().string(),
             e.code().message());
    }
    std::sort(found.begin(), found.end());
    return found;
}

}  // namespace greenmoe

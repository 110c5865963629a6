// Zip members through libzip (see zip_archive.h).
#include "greenmoe/io/zip_archive.h"

#include <zip.h>

#include <algorithm>

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace fs = std::filesystem;

struct ZipArchive::Handle {
    zip_t* zip = nullptr;
    ~Handle() {
        if (zip) zip_discard(zip);  // read-only: nothing to write back
    }
};

ZipArchive::ZipArchive(fs::path path, std::unique_ptr<Handle> handle)
    : path_(std::move(path)), handle_(std::move(handle)) {}
ZipArchive::~ZipArchive() = default;
ZipArchive::ZipArchive(ZipArchive&&) noexcept = default;
ZipArchive& ZipArchive::operator=(ZipArchive&&) noexcept = default;

ZipArchive ZipArchive::open(const fs::path& path) {
    int code = 0;
    // ZIP_CHECKCONS: the central directory checked against the local headers, so a damaged
    // archive is refused at open rather than read as something else.
    zip_t* zip = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (!zip) {
        zip_error_t error;
        zip_error_init_with_code(&error, code);
        const std::string message = zip_error_strerror(&error);
        zip_error_fini(&error);
        fail("{}: cannot read as a zip archive: {}", path.string(), message);
    }
    auto handle = std::make_unique<Handle>();
    handle->zip = zip;
    ZipArchive archive(path, std::move(handle));
    const zip_int64_t n = zip_get_num_entries(zip, 0);
    for (zip_int64_t i = 0; i < n; ++i) {
        const char* name = zip_get_name(zip, zip_uint64_t(i), ZIP_FL_ENC_GUESS);
        if (name) archive.members_.emplace_back(name);
    }
    return archive;
}

bool ZipArchive::contains(const std::string& member) const {
    return zip_name_locate(handle_->zip, member.c_str(), 0) >= 0;
}

std::string ZipArchive::read(const std::string& member, uint64_t max_bytes) const {
    zip_t* zip = handle_->zip;
    const zip_int64_t index = zip_name_locate(zip, member.c_str(), 0);
    check(index >= 0, "{}: no member {}", path_.string(), member);
    zip_stat_t st;
    zip_stat_init(&st);
    check(zip_stat_index(zip, zip_uint64_t(index), 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE),
          "{}: {}: cannot read its entry: {}", path_.string(), member, zip_strerror(zip));
    check(st.size <= max_bytes, "{}: {}: {} bytes, more than the {} expected", path_.string(),
          member, st.size, max_bytes);
    zip_file_t* file = zip_fopen_index(zip, zip_uint64_t(index), 0);
    check(file != nullptr, "{}: {}: cannot open: {}", path_.string(), member, zip_strerror(zip));
    std::string bytes(size_t(st.size), '\0');
    zip_int64_t got = 0;
    // zip_fread returns less than asked only at the end or on an error; the CRC is checked
    // when the whole member has been read.
    while (got < zip_int64_t(bytes.size())) {
        const zip_int64_t n =
            zip_fread(file, bytes.data() + got, zip_uint64_t(zip_int64_t(bytes.size()) - got));
        if (n <= 0) break;
        got += n;
    }
    std::string error;
    if (got != zip_int64_t(bytes.size())) error = zip_error_strerror(zip_file_get_error(file));
    zip_fclose(file);
    check(error.empty(), "{}: {}: damaged member ({} of {} bytes read): {}", path_.string(), member,
          got, bytes.size(), error);
    return bytes;
}

std::optional<ArchiveMember> split_archive_path(const fs::path& path) {
    fs::path prefix;
    for (auto it = path.begin(); it != path.end(); ++it) {
        prefix /= *it;
        if (prefix.extension() != ".zip" || !fs::is_regular_file(prefix)) continue;
        std::string member;
        for (auto rest = std::next(it); rest != path.end(); ++rest) {
            if (!member.empty()) member += '/';
            member += rest->string();
        }
        if (member.empty()) return std::nullopt;
        return ArchiveMember{prefix, member};
    }
    return std::nullopt;
}

}  // namespace greenmoe

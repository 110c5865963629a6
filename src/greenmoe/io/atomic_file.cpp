// Atomic file writing and whole-file reading (see atomic_file.h).
#include "greenmoe/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace {

std::string errno_text(int error) {
    return std::generic_category().message(error);
}

int fsync_retrying(int fd) {
    int rc;
    do {
        rc = ::fsync(fd);
    } while (rc != 0 && errno == EINTR);
    return rc;
}

std::filesystem::path folder_of(const std::filesystem::path& path) {
    auto folder = path.parent_path();
    return folder.empty() ? std::filesystem::path(".") : folder;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::filesystem::path path) : path_(std::move(path)) {
    check(path_.has_filename(), "cannot write {}: the path names no file", path_.string());
    // Same folder as the target, so that rename() stays within one file system and is atomic.
    // The leading dot keeps it out of shard globs and folder listings.
    std::string temp_name = ".";  // appended piecewise: "." + string trips GCC 12's -Wrestrict
    temp_name += path_.filename().string();
    temp_name += ".tmp.";
    temp_name += std::to_string(::getpid());
    temp_path_ = path_.parent_path() / temp_name;
    do {
        fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) {
        const int error = errno;
        temp_path_.clear();  // nothing was created, so the destructor must not unlink
        fail("cannot write {}: cannot create its temporary file in {}: {}", path_.string(),
             folder_of(path_).string(), errno_text(error));
    }
}

AtomicFileWriter::~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    // temp_path_ is cleared once the rename succeeded; otherwise the temp file is debris.
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t size) {
    check(fd_ >= 0, "cannot write {}: the file was already committed or failed", path_.string());
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd_, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("cannot write {}: {}", path_.string(), errno_text(errno));
        }
        p += n;
        size -= static_cast<size_t>(n);
    }
}

void AtomicFileWriter::commit() {
    check(fd_ >= 0, "cannot commit {}: the file was already committed or failed", path_.string());
    if (fsync_retrying(fd_) != 0) {
        fail("cannot write {}: fsync failed: {}", path_.string(), errno_text(errno));
    }
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) {
        fail("cannot write {}: close failed: {}", path_.string(), errno_text(errno));
    }
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        fail("cannot write {}: renaming {} into place failed: {}", path_.string(),
             temp_path_.string(), errno_text(errno));
    }
    temp_path_.clear();
    // The rename is durable only once the folder's entry is on disk.
    const auto folder = folder_of(path_);
    const int dir_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        fail("wrote {} but cannot open its folder {} to sync it: {}", path_.string(),
             folder.string(), errno_text(errno));
    }
    const int rc = fsync_retrying(dir_fd);
    const int error = errno;
    ::close(dir_fd);
    // Some file systems cannot sync a folder (EINVAL); the data itself is already synced.
    if (rc != 0 && error != EINVAL) {
        fail("wrote {} but syncing its folder {} failed: {}", path_.string(), folder.string(),
             errno_text(error));
    }
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
    AtomicFileWriter writer(path);
    writer.write(bytes.data(), bytes.size());
    writer.commit();
}

std::string read_file(const std::filesystem::path& path) {
    int fd;
    do {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) fail("cannot read {}: {}", path.string(), errno_text(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        fail("cannot read {}: not a regular file", path.string());
    }
    std::string bytes;
    bytes.reserve(static_cast<size_t>(st.st_size));
    // Read to end of file rather than trusting st_size, which may change under us.
    char buffer[1 << 16];
    while (true) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int error = errno;
            ::close(fd);
            fail("cannot read {}: {}", path.string(), errno_text(error));
        }
        if (n == 0) break;
        bytes.append(buffer, static_cast<size_t>(n));
    }
    ::close(fd);
    return bytes;
}

}  // namespace greenmoe

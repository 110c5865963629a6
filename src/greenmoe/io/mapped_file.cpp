// Read-only whole-file mmap (see mapped_file.h).
#include "greenmoe/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace {

std::string errno_text(int error) {
    return std::generic_category().message(error);
}

}  // namespace

MappedFile MappedFile::open(const std::filesystem::path& path) {
    int fd;
    do {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) fail("cannot open {}: {}", path.string(), errno_text(errno));

    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int error = errno;
        ::close(fd);
        fail("cannot stat {}: {}", path.string(), errno_text(error));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail("cannot read {}: not a regular file", path.string());
    }

    MappedFile file;
    file.path_ = path;
    file.size_ = static_cast<size_t>(st.st_size);
    if (file.size_ > 0) {
        void* addr = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) {
            const int error = errno;
            ::close(fd);
            fail("cannot map {} ({} bytes) into memory: {}", path.string(), file.size_,
                 errno_text(error));
        }
        file.data_ = static_cast<const std::byte*>(addr);
    }
    // The mapping keeps its own reference to the file; the descriptor is no longer needed.
    ::close(fd);
    return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        unmap();
        path_ = std::move(other.path_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

MappedFile::~MappedFile() {
    unmap();
}

void MappedFile::unmap() noexcept {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
}

}  // namespace greenmoe

// The run folder lock (see run_lock.h).
#include "greenmoe/io/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>
#include <thread>

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace {

std::string errno_text(int error) {
    return std::generic_category().message(error);
}

// The pid the holder wrote, or "" when it has not written it yet.
std::string read_holder(int fd) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string pid;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) pid += buf[i];
    return pid;
}

}  // namespace

RunLock::RunLock(const std::filesystem::path& folder) {
    const std::filesystem::path path = folder / kFileName;
    // O_CLOEXEC: a program the run starts must not inherit (and so prolong) the lock.
    do {
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    } while (fd_ < 0 && errno == EINTR);
    check(fd_ >= 0, "{}: cannot open the run folder's lock file: {}", path.string(),
          errno_text(errno));
    int rc;
    do {
        rc = ::flock(fd_, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        const int error = errno;
        std::string holder;
        // The holder writes its pid just after taking the lock: give it a moment.
        for (int tries = 0; tries < 50 && holder.empty() && error == EWOULDBLOCK; ++tries) {
            holder = read_holder(fd_);
            if (holder.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::close(fd_);
        fd_ = -1;
        check(error != EWOULDBLOCK,
              "{}: the run folder is in use by another greenmoe process (pid {}); wait for it "
              "to finish, stop it, or choose another --out",
              folder.string(), holder.empty() ? "unknown" : holder);
        fail("{}: cannot lock: {}", path.string(), errno_text(error));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    // Best effort: the pid only makes the message of a refused process more useful.
    if (::ftruncate(fd_, 0) == 0) {
        [[maybe_unused]] const ssize_t n = ::pwrite(fd_, pid.data(), pid.size(), 0);
    }
}

RunLock::~RunLock() {
    // Closing the descriptor releases the lock; the file stays, so that no process can
    // ever lock a file that a newer one has replaced.
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace greenmoe

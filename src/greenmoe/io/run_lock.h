// The lock that gives one process at a time a run folder: flock() on RUN/run.lock.
#pragma once

#include <filesystem>

namespace greenmoe {

// Holds an exclusive advisory lock (flock) on <folder>/run.lock for its lifetime. The
// kernel drops the lock when the process ends however it ends (even by SIGKILL), so a
// lock file left behind by a killed run never blocks the next one; the file itself stays
// and holds the pid of the last holder. Throws Error naming the folder and the holder's
// pid when another process holds the lock (or another RunLock in this process).
class RunLock {
  public:
    explicit RunLock(const std::filesystem::path& folder);
    ~RunLock();
    RunLock(const RunLock&) = delete;
    RunLock& operator=(const RunLock&) = delete;

    static constexpr const char* kFileName = "run.lock";

  private:
    int fd_ = -1;
};

}  // namespace greenmoe

// CPU time and peak memory of this process or of a child, for the energy estimate.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <functional>
#include <mutex>
#include <optional>
#include <string_view>

namespace greenmoe {

struct ProcessUsage {
    double cpu_seconds = 0.0;     // user + system
    double peak_rss_bytes = 0.0;  // high-water mark of resident memory
};

// Returns the usage so far; called from the monitor's poller and the caller's thread.
using UsageSource = std::function<ProcessUsage()>;

// This process and the children it has waited for (getrusage SELF + CHILDREN).
ProcessUsage self_usage();
// What wait4/getrusage report (ru_maxrss is in KiB on Linux).
ProcessUsage usage_from_rusage(const struct rusage& usage);
// utime + stime + cutime + cstime of /proc/<pid>/stat's text; nullopt when malformed.
std::optional<double> cpu_seconds_from_proc_stat(std::string_view stat_text, long ticks_per_s);
// VmHWM of /proc/<pid>/status's text, in bytes; nullopt when absent.
std::optional<double> peak_rss_from_proc_status(std::string_view status_text);

// Usage of one child process: read live from /proc/<pid> while it runs, then, once wait()
// has reaped it, the exact totals wait4 gave (which include the grandchildren it waited
// for). Values never decrease. Thread-safe.
class ChildUsage {
  public:
    // Zero usage until start() names the child.
    void start(pid_t pid);
    ProcessUsage operator()();
    // Blocks until the child ends, reaps it and returns its wait status (-1 if waiting
    // failed). The pid is reaped under the lock, so no read can reach a recycled pid.
    int wait();

  private:
    std::mutex mutex_;
    pid_t pid_ = 0;
    bool reaped_ = false;
    ProcessUsage last_;
};

}  // namespace greenmoe

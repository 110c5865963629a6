// Process CPU time and peak memory (see process_usage.h).
#include "greenmoe/energy/process_usage.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace greenmoe {

namespace {

double seconds(const timeval& tv) {
    return double(tv.tv_sec) + double(tv.tv_usec) * 1e-6;
}

std::optional<std::string> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

ProcessUsage usage_from_rusage(const struct rusage& usage) {
    return {seconds(usage.ru_utime) + seconds(usage.ru_stime), double(usage.ru_maxrss) * 1024.0};
}

ProcessUsage self_usage() {
    struct rusage self {};
    struct rusage children {};
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    const ProcessUsage a = usage_from_rusage(self), b = usage_from_rusage(children);
    return {a.cpu_seconds + b.cpu_seconds, std::max(a.peak_rss_bytes, b.peak_rss_bytes)};
}

std::optional<double> cpu_seconds_from_proc_stat(std::string_view text, long ticks_per_s) {
    // The command name (field 2) is in parentheses and may hold spaces: fields are counted
    // from the last ')'. utime..cstime are fields 14..17, i.e. the 12th..15th after it.
    const size_t close = text.rfind(')');
    if (close == std::string_view::npos || ticks_per_s <= 0) return std::nullopt;
    std::istringstream in{std::string(text.substr(close + 1))};
    std::string field;
    double ticks = 0.0;
    for (int i = 3; i <= 17; ++i) {
        if (!(in >> field)) return std::nullopt;
        if (i >= 14) {
            char* end = nullptr;
            const double v = std::strtod(field.c_str(), &end);
            if (end == field.c_str()) return std::nullopt;
            ticks += v;
        }
    }
    return ticks / double(ticks_per_s);
}

std::optional<double> peak_rss_from_proc_status(std::string_view text) {
    const size_t p = text.find("VmHWM:");
    if (p == std::string_view::npos) return std::nullopt;
    const std::string rest(text.substr(p + 6, 64));
    char* end = nullptr;
    const double kib = std::strtod(rest.c_str(), &end);
    if (end == rest.c_str()) return std::nullopt;
    return kib * 1024.0;
}

void ChildUsage::start(pid_t pid) {
    std::lock_guard lock(mutex_);
    pid_ = pid;
}

ProcessUsage ChildUsage::operator()() {
    std::lock_guard lock(mutex_);
    if (reaped_ || pid_ <= 0) return last_;
    const std::string dir = "/proc/" + std::to_string(pid_);
    if (const auto stat = slurp(dir + "/stat")) {
        if (const auto cpu = cpu_seconds_from_proc_stat(*stat, sysconf(_SC_CLK_TCK))) {
            last_.cpu_seconds = std::max(last_.cpu_seconds, *cpu);
        }
    }
    if (const auto status = slurp(dir + "/status")) {
        if (const auto rss = peak_rss_from_proc_status(*status)) {
            last_.peak_rss_bytes = std::max(last_.peak_rss_bytes, *rss);
        }
    }
    return last_;
}

int ChildUsage::wait() {
    if (pid_ <= 0) return -1;
    // Wait without reaping first (the child stays a zombie, its /proc entry valid), then
    // reap under the lock.
    siginfo_t info{};
    while (waitid(P_PID, id_t(pid_), &info, WEXITED | WNOWAIT) != 0) {
        if (errno != EINTR) break;
    }
    std::lock_guard lock(mutex_);
    int status = -1;
    struct rusage usage {};
    pid_t r;
    while ((r = wait4(pid_, &status, 0, &usage)) < 0 && errno == EINTR) {
    }
    if (r != pid_) return -1;
    const ProcessUsage final_usage = usage_from_rusage(usage);
    last_.cpu_seconds = std::max(last_.cpu_seconds, final_usage.cpu_seconds);
    last_.peak_rss_bytes = std::max(last_.peak_rss_bytes, final_usage.peak_rss_bytes);
    reaped_ = true;
    return status;
}

}  // namespace greenmoe

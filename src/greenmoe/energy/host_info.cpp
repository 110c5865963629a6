// Host description (see host_info.h).
#include "greenmoe/energy/host_info.h"

#include <gnu/libc-version.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace greenmoe {

namespace {

std::string slurp(const char* path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    if (in) ss << in.rdbuf();
    return ss.str();
}

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
    return std::string(s.substr(b, e - b));
}

}  // namespace

std::string cpu_model_from_cpuinfo(std::string_view text) {
    for (std::string_view key : {"model name", "Model", "Hardware", "cpu model"}) {
        size_t pos = 0;
        while (pos < text.size()) {
            size_t end = text.find('\n', pos);
            if (end == std::string_view::npos) end = text.size();
            const std::string_view line = text.substr(pos, end - pos);
            pos = end + 1;
            const size_t colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            if (trim(line.substr(0, colon)) == key) {
                std::string value = trim(line.substr(colon + 1));
                if (!value.empty()) return value;
            }
        }
    }
    return {};
}

HostInfo host_info() {
    HostInfo info;
    info.cpu_model = cpu_model_from_cpuinfo(slurp("/proc/cpuinfo"));
    info.cpu_count = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
    cpu_set_t set;
    CPU_ZERO(&set);
    info.usable_cpus =
        sched_getaffinity(0, sizeof set, &set) == 0 ? std::max(1, CPU_COUNT(&set)) : info.cpu_count;
    const std::string meminfo = slurp("/proc/meminfo");
    if (const size_t p = meminfo.find("MemTotal:"); p != std::string::npos) {
        info.ram_total_gb = std::strtod(meminfo.c_str() + p + 9, nullptr) / (1024.0 * 1024.0);
    }
    struct utsname u {};
    if (uname(&u) == 0) {
        info.os = fmt::format("{}-{}-{}-with-glibc{}", u.sysname, u.release, u.machine,
                              gnu_get_libc_version());
    }
    return info;
}

}  // namespace greenmoe

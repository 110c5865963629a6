// What the machine is: CPU model and count, memory, OS (for the estimate and emissions.csv).
#pragma once

#include <string>
#include <string_view>

namespace greenmoe {

struct HostInfo {
    std::string cpu_model;      // /proc/cpuinfo's "model name" ("" when unknown)
    int cpu_count = 1;          // logical CPUs online
    int usable_cpus = 1;        // CPUs this process may run on (its affinity mask)
    double ram_total_gb = 0.0;  // MemTotal, GB = 2^30 bytes
    std::string os;  // like Python's platform.platform(): "Linux-6.1.0-x86_64-with-glibc2.36"
};

HostInfo host_info();

// The CPU model of /proc/cpuinfo's text: "model name", else "Model" or "Hardware" (ARM
// boards); "" when none.
std::string cpu_model_from_cpuinfo(std::string_view cpuinfo);

}  // namespace greenmoe

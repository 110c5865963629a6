// CPU package and DRAM energy from the Linux powercap (RAPL) counters.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "greenmoe/energy/energy_meter.h"

namespace greenmoe {

// Where Linux exposes RAPL zones (Intel, and AMD since Linux 5.8, under the same names).
std::vector<std::filesystem::path> default_powercap_roots();

// Opens the RAPL zones found under `roots` (each a powercap folder: zones are the folders
// with a `name` and an `energy_uj` file, reached through entries whose name holds "rapl").
// Sources: "cpu" = the sum of the top-level "package-N" zones (their "core"/"uncore"
// subzones are part of them and are not added again; "psys" covers more than the CPU and is
// skipped; a zone seen twice — through /sys/class and /sys/devices, or intel-rapl-mmio's
// copy of a package — counts once), and "ram" = the sum of the "dram" zones when there are
// any. Counters are read as energy_uj; a decrease is a wrap at max_energy_range_uj.
// Unavailable (with the reason) when no package zone exists or one cannot be read — Linux
// made energy_uj readable by root only in 2020 (CVE-2020-8694).
MeterOpenResult open_powercap_meter(const std::vector<std::filesystem::path>& roots);

// Microjoules used between two reads of a counter that wraps after max_range_uj.
// A `before` above the range (a bad range file) counts `after` alone rather than wrapping.
inline uint64_t counter_delta_uj(uint64_t before, uint64_t after, uint64_t max_range_uj) {
    if (after >= before) return after - before;
    return before <= max_range_uj ? (max_range_uj - before) + after : after;
}

}  // namespace greenmoe

// The Green Algorithms estimate of CPU and memory energy, for machines without counters.
#pragma once

#include <memory>
#include <string>

#include "greenmoe/energy/energy_meter.h"
#include "greenmoe/energy/process_usage.h"

namespace greenmoe {

// Green Algorithms: energy = time × (cores × TDP per core × usage + memory GB × W/GB),
// PUE applied later by the carbon settings. With the usage measured as CPU time / (time ×
// cores), the CPU term is CPU time × TDP per core, whatever the core count.
struct EstimateSettings {
    bool cpu = true;  // which sources this meter provides
    bool ram = true;
    double tdp_per_core_w = 0.0;
    std::string tdp_origin;  // where the TDP came from, for reports
    int cores = 1;           // cores the usage factor refers to
    double cpu_usage = 0.0;  // fixed usage factor in (0, 1]; 0 = from CPU time
    double memory_gb = 0.0;  // fixed memory; 0 = the peak RSS (GB = 2^30 bytes)
    double memory_w_per_gb = 0.3725;
};

// Reads `usage` (CPU time, peak RSS) on each read; memory energy is integrated between
// reads with the peak RSS of the later one.
std::unique_ptr<EnergyMeter> make_estimate_meter(const EstimateSettings& settings,
                                                 UsageSource usage);

}  // namespace greenmoe

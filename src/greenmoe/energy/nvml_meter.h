// NVIDIA GPU energy through NVML, loaded at run time (no build dependency on the driver).
#pragma once

#include <string>
#include <vector>

#include "greenmoe/energy/energy_meter.h"

namespace greenmoe {

inline constexpr const char* kNvmlLibrary = "libnvidia-ml.so.1";

// Opens NVML with dlopen(library) and meters every GPU as one "gpu" source: differences of
// nvmlDeviceGetTotalEnergyConsumption (mJ), or, where a GPU does not support that counter,
// nvmlDeviceGetPowerUsage (mW) integrated over time with the trapezoid rule (the meter then
// asks to be read at least every 0.1 s). Unavailable, with the reason, when the library or
// a GPU is missing or NVML fails to start. `gpu_models` receives the GPU names.
MeterOpenResult open_nvml_meter(const std::string& library, std::vector<std::string>* gpu_models);

// The NVML entry points the meter calls, with nvml.h's signatures (declared here: no build
// dependency on the driver). Results: 0 = NVML_SUCCESS; devices are opaque pointers.
struct NvmlApi {
    using Return = int;
    using Device = struct NvmlDeviceOpaque*;
    void* library = nullptr;         // dlclose'd when the meter goes (null: nothing to close)
    Return (*init)() = nullptr;      // nvmlInit_v2
    Return (*shutdown)() = nullptr;  // nvmlShutdown
    Return (*get_count)(unsigned int*) = nullptr;                 // nvmlDeviceGetCount_v2
    Return (*get_handle)(unsigned int, Device*) = nullptr;        // …GetHandleByIndex_v2
    Return (*get_energy)(Device, unsigned long long*) = nullptr;  // …GetTotalEnergyConsumption, mJ
    Return (*get_power)(Device, unsigned int*) = nullptr;         // …GetPowerUsage, mW
    Return (*get_name)(Device, char*, unsigned int) = nullptr;    // nvmlDeviceGetName
    const char* (*error_string)(Return) = nullptr;                // nvmlErrorString (optional)
};

// The same meter over given entry points (tests use fakes); open_nvml_meter fills them
// with dlsym.
MeterOpenResult open_nvml_meter_with(const NvmlApi& api, std::vector<std::string>* gpu_models);

}  // namespace greenmoe

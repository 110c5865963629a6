// The options every command that measures energy shares, and their command-line binding.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace greenmoe {

// Plain settings for EnergyMonitor. A 0 in a number means "not given: measure or use the
// table's default".
struct EnergyOptions {
    bool enabled = true;  // false: no meters, no poller, zero measurements (--no-energy)
    // Carbon intensity: a location code of Green Algorithms' CI_aggregated.csv ("FR",
    // "US-CA", "WORLD") or a country name; "" = WORLD (475 g/kWh). Unknown → Error.
    std::string location;
    // Power usage effectiveness. Given (≥ 1), it multiplies every source; otherwise the
    // cloud region's or provider's, and without those 1.0 for measured energy and
    // defaults_PUE.csv's "Unknown" (1.56) for estimates, as Green Algorithms applies it.
    double pue = 0.0;
    std::string cloud_provider;  // defaults_PUE.csv provider: gcp, aws, azure, OVHcloud…
    std::string cloud_region;    // cloudProviders_datacenters.csv Name, e.g. europe-west1
    // Meters.
    bool use_rapl = true;
    std::string powercap_root;  // "" = /sys/class/powercap and /sys/devices/virtual/powercap
    bool use_nvml = true;
    std::string nvml_library = "libnvidia-ml.so.1";
    // Overrides of the estimate (used only for sources no counter measures).
    std::string cpu_model;          // "" = /proc/cpuinfo's; looked up in TDP_cpu.csv
    double cpu_tdp_per_core = 0.0;  // W per core; 0 = from TDP_cpu.csv
    int cores = 0;                  // 0 = the CPUs this process may run on
    double cpu_usage = 0.0;         // 0 = CPU time / (time × cores)
    double memory_gb = 0.0;         // 0 = peak RSS
    // Seconds between background reads; 0 = as the meters need (≤ 1 s).
    double poll_interval_s = 0.0;
    // emissions.csv identification.
    std::string project_name = "greenmoe";
    std::string experiment_id;
};

// Adds --location, --pue, --no-energy, --cloud-provider, --cloud-region and the meter and
// estimate overrides to a CLI11 (sub)command, so train, eval, generate and energy take
// them the same way.
void add_energy_options(CLI::App* app, EnergyOptions& options);

// The command-line arguments that give `options` (where they differ from the defaults) to
// another greenmoe command, as `sweep` starts `train`.
std::vector<std::string> energy_options_args(const EnergyOptions& options);

}  // namespace greenmoe

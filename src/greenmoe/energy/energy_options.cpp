// Command-line binding of EnergyOptions (see energy_options.h).
#include "greenmoe/energy/energy_options.h"

#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "greenmoe/core/option_checks.h"

namespace greenmoe {

void add_energy_options(CLI::App* app, EnergyOptions& o) {
    const std::string group = "Energy and carbon";
    const auto add = [&](const std::string& name, auto& value, const std::string& type,
                         const std::string& help) {
        return app->add_option(name, value, help)->type_name(type)->group(group);
    };
    // Callbacks rather than "--no-x{false}" flags, which CLI11 2.1 shows verbatim in --help.
    const auto add_off = [&](const std::string& name, bool& value, const std::string& help) {
        const auto set_false = [&value] { value = false; };
        app->add_flag_callback(name, set_false, help)->group(group);
    };
    add_off("--no-energy", o.enabled, "do not measure energy or estimate CO2e");
    add("--location", o.location, "CODE",
        "where the electricity comes from: a Green Algorithms location code (FR, DE, GB, "
        "US-CA, CA-QC, …) or country name, for its carbon intensity; default WORLD "
        "(475 gCO2e/kWh)");
    add("--pue", o.pue, "X",
        "power usage effectiveness of the data centre (≥ 1), applied to all energy; default: "
        "the cloud region's/provider's, else 1.0 for measured and 1.56 (Green Algorithms' "
        "'Unknown') for estimated energy")
        ->check(in_range(1.0, 10.0));
    add("--cloud-provider", o.cloud_provider, "NAME",
        "cloud provider for the PUE (gcp, aws, azure, OVHcloud, Oracle, Unknown)");
    add("--cloud-region", o.cloud_region, "NAME",
        "cloud region (with --cloud-provider), e.g. europe-west1: sets location and PUE");
    add_off("--no-rapl", o.use_rapl, "do not read RAPL (powercap) counters");
    add("--powercap-root", o.powercap_root, "DIR",
        "folder holding the powercap zones (default /sys/class/powercap and "
        "/sys/devices/virtual/powercap)");
    add_off("--no-nvml", o.use_nvml, "do not load NVML for GPU energy");
    add("--cpu-model", o.cpu_model, "NAME",
        "CPU model to look up in Green Algorithms' TDP table (default: /proc/cpuinfo's)");
    add("--cpu-tdp", o.cpu_tdp_per_core, "W",
        "estimate: CPU power per core in W (default: TDP_per_core of the CPU model)")
        ->check(above(0));
    add("--cores", o.cores, "N", "estimate: cores used (default: the CPUs this process may use)")
        ->check(positive_count());
    add("--cpu-usage", o.cpu_usage, "U",
        "estimate: fixed core usage factor in (0, 1] (default: CPU time / (time × cores))")
        ->check(in_range(0.0, 1.0, /*lo_open=*/true));
    add("--memory-gb", o.memory_gb, "GB", "estimate: memory in GB (default: peak resident memory)")
        ->check(above(0));
}

std::vector<std::string> energy_options_args(const EnergyOptions& o) {
    const EnergyOptions defaults;
    std::vector<std::string> args;
    const auto text = [&](const char* name, const std::string& value, const std::string& def) {
        if (value != def) args.insert(args.end(), {name, value});
    };
    const auto number = [&](const char* name, double value) {
        if (value != 0.0) args.insert(args.end(), {name, fmt::format("{}", value)});
    };
    if (!o.enabled) args.emplace_back("--no-energy");
    text("--location", o.location, defaults.location);
    number("--pue", o.pue);
    text("--cloud-provider", o.cloud_provider, defaults.cloud_provider);
    text("--cloud-region", o.cloud_region, defaults.cloud_region);
    if (!o.use_rapl) args.emplace_back("--no-rapl");
    text("--powercap-root", o.powercap_root, defaults.powercap_root);
    if (!o.use_nvml) args.emplace_back("--no-nvml");
    text("--cpu-model", o.cpu_model, defaults.cpu_model);
    number("--cpu-tdp", o.cpu_tdp_per_core);
    number("--cores", o.cores);
    number("--cpu-usage", o.cpu_usage);
    number("--memory-gb", o.memory_gb);
    return args;
}

}  // namespace greenmoe

// The interface every energy meter (RAPL, NVML, Green Algorithms estimate) implements.
#pragma once

#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace greenmoe {

// Source keys: what CodeCarbon's cpu_energy, ram_energy and gpu_energy columns hold.
inline constexpr std::string_view kSourceCpu = "cpu";
inline constexpr std::string_view kSourceRam = "ram";
inline constexpr std::string_view kSourceGpu = "gpu";

// One kind of energy a meter reports.
struct EnergySource {
    std::string key;        // kSourceCpu, kSourceRam or kSourceGpu
    bool measured = false;  // read from a hardware counter (true) or estimated from a model
    std::string method;  // how, for reports: "RAPL package-0 + package-1", "Green Algorithms …"
};

// A meter keeps running totals of the joules used by each of its sources since it opened.
// Totals never decrease, so the energy of any interval is the difference of two reads, and
// windows may overlap freely. Calls come from one thread at a time (EnergyMonitor locks).
class EnergyMeter {
  public:
    virtual ~EnergyMeter() = default;
    // Short name for reports: "rapl", "nvml", "estimate".
    virtual std::string name() const = 0;
    virtual const std::vector<EnergySource>& sources() const = 0;
    // Brings the totals up to `now_s` (seconds on a monotonic clock, the same clock on every
    // call) and writes them, one per source in sources() order, into `joules`.
    virtual void read(double now_s, std::span<double> joules) = 0;
    // The longest gap between reads that keeps the totals right (a counter that may wrap,
    // power that is integrated); infinity when any gap will do.
    virtual double max_read_interval_s() const { return std::numeric_limits<double>::infinity(); }
};

// What opening a meter gave: the meter, or why there is none (for reports), plus notes on
// what it left out (a missing DRAM zone…).
struct MeterOpenResult {
    std::unique_ptr<EnergyMeter> meter;
    std::string unavailable_reason;
    std::vector<std::string> notes;
};

}  // namespace greenmoe

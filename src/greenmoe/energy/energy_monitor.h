// EnergyMonitor: named, overlapping measurement windows over every available energy meter.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "greenmoe/energy/carbon.h"
#include "greenmoe/energy/emissions_csv.h"
#include "greenmoe/energy/energy_meter.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/energy/host_info.h"
#include "greenmoe/energy/process_usage.h"

namespace greenmoe {

// The energy of one window (or of a peek into an open one).
struct EnergyMeasurement {
    std::string name;
    double seconds = 0.0;  // wall time, monotonic clock
    std::map<std::string, double>
        joules;  // hardware energy per source ("cpu", "ram", "gpu"), no PUE
    std::map<std::string, bool> source_measured;  // per source: counter (true) or estimate (false)
    double total_joules = 0.0;                    // sum of `joules`: what the hardware used
    double total_joules_with_pue = 0.0;           // each source × its PUE: what the facility used
    double pue = 1.0;                             // effective: with / without PUE (1 when 0 J)
    double kwh = 0.0;                             // total_joules_with_pue in kWh
    double co2e_g = 0.0;                          // kwh × the location's carbon intensity
    bool measured = false;                        // every source read from a hardware counter
    std::string source_label;                     // e.g. "estimated: cpu, ram (Green Algorithms)"
};

// Whether a meter was found, and why not / what it left out.
struct MeterStatus {
    std::string name;
    bool available = false;
    std::string detail;
};

struct MonitorSettings {
    double poll_interval_s = 1.0;   // background reads; 0 = none (reads happen on calls only)
    std::function<double()> clock;  // monotonic seconds; empty = std::chrono::steady_clock
};

// Opens the meters once, reads them in a background thread often enough for counters
// that wrap or power that is integrated, and answers for any number of named windows,
// which may overlap and nest. All methods are thread-safe. Typical use in a trainer:
//
//     EnergyMonitor energy(options.energy);
//     energy.begin_window("run");
//     ... each log step: auto so_far = energy.peek("run"); log so_far.kwh, so_far.co2e_g
//     auto m = energy.end_window("run");
//     EmissionsCsv(run_dir / "emissions.csv").append(energy.emissions_row(m));
//     fmt::print("{}\n", energy.summary_line(m));
class EnergyMonitor {
  public:
    // Opens RAPL and NVML as the options allow and the machine has, and estimates with
    // Green Algorithms the CPU and RAM energy that no counter measures (the usage of this
    // process, or of `usage` when given, e.g. a child's). Throws Error for a location,
    // provider, region or PUE the tables reject. With options.enabled false it opens
    // nothing and every measurement is zero.
    explicit EnergyMonitor(const EnergyOptions& options, UsageSource usage = {});
    // With given meters (tests, other callers).
    EnergyMonitor(std::vector<std::unique_ptr<EnergyMeter>> meters, CarbonSettings carbon,
                  MonitorSettings settings = {});
    ~EnergyMonitor();
    EnergyMonitor(const EnergyMonitor&) = delete;
    EnergyMonitor& operator=(const EnergyMonitor&) = delete;

    bool enabled() const { return enabled_; }

    // Opens a window; Error if one of that name is open.
    void begin_window(const std::string& name);
    // Closes it and returns its energy; Error if no window of that name is open.
    EnergyMeasurement end_window(const std::string& name);
    // The energy of an open window so far (it stays open); Error if none of that name. Costs
    // one read of the counters (microseconds): fine once per training step.
    EnergyMeasurement peek(const std::string& name);
    bool window_open(const std::string& name) const;
    // Since the monitor was created.
    EnergyMeasurement total();

    // One line for the end of a run, with the credit the tables' licence asks for.
    std::string summary_line(const EnergyMeasurement& m) const;
    std::string summary_line();  // of total()
    // A short fragment for progress lines ("3.2 Wh est, 1.5 gCO2e"), no credit.
    std::string progress_text(const EnergyMeasurement& m) const;
    // Several lines: time, energy per source with how it was obtained, PUE, kWh, CO2e,
    // location and intensity, equivalences, meter status, credit.
    std::string report(const EnergyMeasurement& m) const;

    // An emissions.csv row for a measurement (a run segment), stamped now.
    EmissionsRow emissions_row(const EnergyMeasurement& m) const;

    const std::vector<MeterStatus>& meter_status() const { return status_; }
    const std::vector<EnergySource>& sources() const { return sources_; }
    const CarbonSettings& carbon() const { return carbon_; }
    const HostInfo& host() const { return host_; }
    const std::string& run_id() const { return run_id_; }

  private:
    struct Snapshot {
        double time_s = 0.0;
        std::vector<double> joules;
    };

    void init(MonitorSettings settings);
    void read_locked();
    EnergyMeasurement measure_locked(const std::string& name, const Snapshot& from) const;
    void poll_loop(double interval_s);

    bool enabled_ = true;
    std::vector<std::unique_ptr<EnergyMeter>> meters_;
    std::vector<EnergySource> sources_;       // all meters' sources, in order
    std::vector<std::string> source_meters_;  // the meter of each source
    std::vector<MeterStatus> status_;
    CarbonSettings carbon_;
    HostInfo host_;
    std::vector<std::string> gpu_models_;
    std::string experiment_id_, project_name_, run_id_;
    std::function<double()> clock_;

    mutable std::mutex mutex_;
    Snapshot now_, start_;
    std::map<std::string, Snapshot> windows_;

    std::condition_variable stop_cv_;
    bool stop_ = false;
    std::thread poller_;
};

// "12.3 J", "4.56 kJ", "1.23 Wh", "7.8 kWh".
std::string format_energy(double joules);
// "12 mg", "3.4 g", "5.6 kg", "1.2 t" (CO2e).
std::string format_co2e(double grams);

}  // namespace greenmoe

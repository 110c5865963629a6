// emissions.csv in CodeCarbon's format: one row per run segment, appended atomically.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace greenmoe {

// CodeCarbon 3's columns, in its order (3.3's EmissionsData: water_consumed after
// energy_consumed, utilization after tracking_mode, wue last). Units as CodeCarbon's:
// duration s, emissions kg CO2e, emissions_rate kg/s, *_power W, *_energy and
// energy_consumed kWh, water_consumed L, ram_total_size and ram_used_gb GB.
inline constexpr std::array<std::string_view, 38> kEmissionsCsvColumns = {
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "on_cloud",
    "pue",
    "wue",
};

// The 32 columns greenmoe wrote before (CodeCarbon 2.8's). A file with this header is
// rewritten in the 38-column layout when a row is appended (see EmissionsCsv::append).
inline constexpr std::array<std::string_view, 32> kEmissionsCsvColumnsV2 = {
    "timestamp",      "project_name",       "run_id",         "experiment_id",
    "duration",       "emissions",          "emissions_rate", "cpu_power",
    "gpu_power",      "ram_power",          "cpu_energy",     "gpu_energy",
    "ram_energy",     "energy_consumed",    "country_name",   "country_iso_code",
    "region",         "cloud_provider",     "cloud_region",   "os",
    "python_version", "codecarbon_version", "cpu_count",      "cpu_model",
    "gpu_count",      "gpu_model",          "longitude",      "latitude",
    "ram_total_size", "tracking_mode",      "on_cloud",       "pue"};

// One row. As CodeCarbon defines them: the *_power columns are what the hardware drew
// (no PUE); cpu/gpu/ram energy each include the PUE, so that
// cpu_energy + gpu_energy + ram_energy = energy_consumed and emissions = energy_consumed
// × carbon intensity; water_consumed = energy_consumed × wue. greenmoe's conventions where
// CodeCarbon's do not carry over: pue is the effective one (energy with PUE / hardware
// energy: measured and estimated sources may have different PUEs); country_iso_code is
// Green Algorithms' code (ISO 3166 alpha-2, "US" for "US-CA"), not alpha-3;
// python_version is empty and codecarbon_version names greenmoe ("greenmoe-0.1.0");
// longitude/latitude are empty; the utilization columns are empty (not measured);
// tracking_mode is "machine" when a RAPL counter measured the CPU and "process" when the
// CPU was estimated from this process's CPU time.
struct EmissionsRow {
    std::string timestamp;  // end of the segment, local time, %Y-%m-%dT%H:%M:%S
    std::string project_name, run_id, experiment_id;
    double duration_s = 0.0;
    double emissions_kg = 0.0, emissions_rate_kg_per_s = 0.0;
    double cpu_power_w = 0.0, gpu_power_w = 0.0, ram_power_w = 0.0;
    double cpu_energy_kwh = 0.0, gpu_energy_kwh = 0.0, ram_energy_kwh = 0.0;  // with PUE
    double energy_consumed_kwh = 0.0;                                         // their sum
    double water_consumed_l = 0.0;
    std::string country_name, country_iso_code, region, cloud_provider, cloud_region;
    std::string os, python_version, codecarbon_version;
    int cpu_count = 0;
    std::string cpu_model;
    int gpu_count = 0;  // written empty when 0, as CodeCarbon does
    std::string gpu_model;
    std::string longitude, latitude;
    double ram_total_size_gb = 0.0;
    std::string tracking_mode = "process";
    // Not measured by greenmoe: written empty.
    std::optional<double> cpu_utilization_percent, gpu_utilization_percent, ram_utilization_percent,
        ram_used_gb;
    std::string on_cloud = "N";
    double pue = 1.0;
    double wue = 0.0;  // L/kWh (CodeCarbon's default 0: no water counted)

    // The 38 fields, formatted (numbers as Python's repr writes them), not yet quoted.
    std::vector<std::string> fields() const;
};

// A number as Python's repr(float) writes it: shortest round-trip digits, "1.0" not "1".
std::string python_float(double value);

// Local time as CodeCarbon stamps rows.
std::string emissions_timestamp_now();

// Sums over the rows of an emissions.csv: a run's cost across all its segments.
struct EmissionsTotals {
    int segments = 0;
    double duration_s = 0.0;
    double energy_consumed_kwh = 0.0;
    double emissions_kg = 0.0;
};

class EmissionsCsv {
  public:
    explicit EmissionsCsv(std::filesystem::path path) : path_(std::move(path)) {}
    const std::filesystem::path& path() const { return path_; }

    // Adds a row at the end: a new file gets the header first; an existing file must start
    // with exactly CodeCarbon 3's header, and its bytes are kept as they are, or with the
    // 32-column header greenmoe wrote before, whose rows are then rewritten in the new
    // layout (components scaled by their row's pue, as they now include it; new columns
    // empty but wue and water_consumed 0.0); any other header is an Error naming the file.
    // The whole file is rewritten atomically (temp file + rename), so a crash leaves the
    // old or the new file, never half a row.
    void append(const EmissionsRow& row) const;

    // The sums of the rows so far (zeros when the file does not exist yet); Error naming the
    // file when its header is not CodeCarbon's or a row's numbers do not parse.
    EmissionsTotals totals() const;

    static std::string header_line();  // with "\n"
    static std::string row_line(const EmissionsRow& row);

  private:
    std::filesystem::path path_;
};

}  // namespace greenmoe

// CodeCarbon-format emissions.csv (see emissions_csv.h).
#include "greenmoe/energy/emissions_csv.h"

#include <ctime>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/energy/csv_table.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe {

std::string python_float(double value) {
    std::string s = fmt::format("{}", value);
    if (s.find_first_not_of("-0123456789") == std::string::npos) s += ".0";
    return s;
}

std::string emissions_timestamp_now() {
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &local);
    return buffer;
}

std::vector<std::string> EmissionsRow::fields() const {
    const auto f = python_float;
    return {timestamp,
            project_name,
            run_id,
            experiment_id,
            f(duration_s),
            f(emissions_kg),
            f(emissions_rate_kg_per_s),
            f(cpu_power_w),
            f(gpu_power_w),
            f(ram_power_w),
            f(cpu_energy_kwh),
            f(gpu_energy_kwh),
            f(ram_energy_kwh),
            f(energy_consumed_kwh),
            country_name,
            country_iso_code,
            region,
            cloud_provider,
            cloud_region,
            os,
            python_version,
            codecarbon_version,
            std::to_string(cpu_count),
            cpu_model,
            gpu_count > 0 ? std::to_string(gpu_count) : std::string(),
            gpu_model,
            longitude,
            latitude,
            f(ram_total_size_gb),
            tracking_mode,
            on_cloud,
            f(pue)};
}

std::string EmissionsCsv::header_line() {
    std::string line;
    for (size_t i = 0; i < kEmissionsCsvColumns.size(); ++i) {
        if (i) line += ',';
        line += kEmissionsCsvColumns[i];
    }
    return line + "\n";
}

std::string EmissionsCsv::row_line(const EmissionsRow& row) {
    const auto fields = row.fields();
    std::string line;
    for (size_t i = 0; i < fields.size(); ++i) {
        if (i) line += ',';
        line += csv_field(fields[i]);
    }
    return line + "\n";
}

EmissionsTotals EmissionsCsv::totals() const {
    EmissionsTotals t;
    std::error_code ec;
    if (!std::filesystem::exists(path_, ec)) return t;
    const CsvTable table(read_file(path_), path_.string(), 0);
    const size_t duration = table.column("duration"), energy = table.column("energy_consumed"),
                 emissions = table.column("emissions");
    for (size_t r = 0; r < table.num_rows(); ++r) {
        ++t.segments;
        t.duration_s += table.number(r, duration);
        t.energy_consumed_kwh += table.number(r, energy);
        t.emissions_kg += table.number(r, emissions);
    }
    return t;
}

void EmissionsCsv::append(const EmissionsRow& row) const {
    std::string content;
    std::error_code ec;
    if (std::filesystem::exists(path_, ec)) content = read_file(path_);
    if (!content.empty()) {
        const std::string header = header_line();
        const size_t end = content.find('\n');
        std::string first = content.substr(0, end == std::string::npos ? content.size() : end);
        if (!first.empty() && first.back() == '\r') first.pop_back();
        check(first + "\n" == header,
              "{}: its first line is not CodeCarbon's emissions.csv header ({} columns "
              "timestamp,project_name,run_id,experiment_id,…,pue); not appending to it",
              path_.string(), kEmissionsCsvColumns.size());
        if (!content.empty() && content.back() != '\n') content += '\n';
    } else {
        content = header_line();
    }
    content += row_line(row);
    write_file_atomic(path_, content);
}

}  // namespace greenmoe

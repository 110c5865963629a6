// CodeCarbon-format emissions.csv (see emissions_csv.h).
#include "greenmoe/energy/emissions_csv.h"

#include <algorithm>
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

namespace {

std::string optional_float(const std::optional<double>& value) {
    return value ? python_float(*value) : std::string();
}

template <size_t N>
std::string header_of(const std::array<std::string_view, N>& columns) {
    std::string line;
    for (size_t i = 0; i < N; ++i) {
        if (i) line += ',';
        line += columns[i];
    }
    line += '\n';
    return line;
}

// A file greenmoe wrote with the 32 CodeCarbon 2.8 columns, in the 38-column layout. Its
// components had no PUE while energy_consumed had it: each is scaled by its row's pue, so
// that they add up to energy_consumed as CodeCarbon defines them.
std::string upgrade_from_v2(const std::string& content, const std::string& file) {
    const CsvTable old(content, file, 0);
    std::string out = EmissionsCsv::header_line();
    for (size_t r = 0; r < old.num_rows(); ++r) {
        const double pue = old.number_or(r, old.column("pue"), 1.0);
        std::string line;
        for (size_t c = 0; c < kEmissionsCsvColumns.size(); ++c) {
            const std::string_view name = kEmissionsCsvColumns[c];
            std::string value;
            if (name == "cpu_energy" || name == "gpu_energy" || name == "ram_energy") {
                value = python_float(old.number_or(r, old.column(name), 0.0) * pue);
            } else if (name == "water_consumed" || name == "wue") {
                value = "0.0";
            } else if (std::find(kEmissionsCsvColumnsV2.begin(), kEmissionsCsvColumnsV2.end(),
                                 name) != kEmissionsCsvColumnsV2.end()) {
                value = old.text(r, old.column(name));
            }
            if (c) line += ',';
            line += csv_field(value);
        }
        out += line;
        out += '\n';
    }
    return out;
}

}  // namespace

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
            f(water_consumed_l),
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
            optional_float(cpu_utilization_percent),
            optional_float(gpu_utilization_percent),
            optional_float(ram_utilization_percent),
            optional_float(ram_used_gb),
            on_cloud,
            f(pue),
            f(wue)};
}

std::string EmissionsCsv::header_line() {
    return header_of(kEmissionsCsvColumns);
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
        first += '\n';
        if (first == header_of(kEmissionsCsvColumnsV2)) {
            content = upgrade_from_v2(content, path_.string());
        } else {
            check(first == header,
                  "{}: its first line is not CodeCarbon 3's emissions.csv header ({} columns "
                  "timestamp,project_name,run_id,experiment_id,…,pue,wue) nor the 32-column "
                  "one greenmoe wrote before; not appending to it",
                  path_.string(), kEmissionsCsvColumns.size());
        }
        if (!content.empty() && content.back() != '\n') content += '\n';
    } else {
        content = header_line();
    }
    content += row_line(row);
    write_file_atomic(path_, content);
}

}  // namespace greenmoe

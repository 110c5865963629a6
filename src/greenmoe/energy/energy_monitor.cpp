// EnergyMonitor: meters, windows, poller and reports (see energy_monitor.h).
#include "greenmoe/energy/energy_monitor.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <random>
#include <set>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/energy/estimate_meter.h"
#include "greenmoe/energy/green_algorithms_data.h"
#include "greenmoe/energy/green_algorithms_tables.h"
#include "greenmoe/energy/nvml_meter.h"
#include "greenmoe/energy/powercap_meter.h"

namespace greenmoe {

namespace {

constexpr double kJoulesPerKwh = 3.6e6;
// Background reads at least this often (RAM integration), at most this often.
constexpr double kMaxPollS = 1.0;
constexpr double kMinPollS = 0.01;

std::string make_uuid4() {
    std::random_device rd;
    unsigned char b[16];
    for (int i = 0; i < 16; i += 4) {
        const unsigned int r = rd();
        for (int k = 0; k < 4; ++k) b[i + k] = static_cast<unsigned char>(r >> (8 * k));
    }
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    std::string s;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += fmt::format("{:02x}", b[i]);
    }
    return s;
}

std::string display_meter(const std::string& meter) {
    return meter == "estimate" ? "Green Algorithms" : meter;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) out += (i ? std::string(sep) : "") + items[i];
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

std::string format_energy(double j) {
    if (std::abs(j) < 3600.0) return fmt::format("{:.4g} J", j);
    if (std::abs(j) < kJoulesPerKwh) return fmt::format("{:.4g} Wh", j / 3600.0);
    return fmt::format("{:.4g} kWh", j / kJoulesPerKwh);
}

std::string format_co2e(double g) {
    if (std::abs(g) < 1.0) return fmt::format("{:.3g} mgCO2e", g * 1e3);
    if (std::abs(g) < 1e3) return fmt::format("{:.3g} gCO2e", g);
    if (std::abs(g) < 1e6) return fmt::format("{:.3g} kgCO2e", g / 1e3);
    return fmt::format("{:.3g} tCO2e", g / 1e6);
}

EnergyMonitor::EnergyMonitor(const EnergyOptions& o, UsageSource usage)
    : enabled_(o.enabled),
      host_(host_info()),
      experiment_id_(o.experiment_id),
      project_name_(o.project_name),
      run_id_(make_uuid4()) {
    if (!enabled_) {
        init({0.0, {}});
        return;
    }
    const GreenAlgorithmsTables tables = GreenAlgorithmsTables::builtin();
    carbon_ = resolve_carbon(o, tables);
    check(o.poll_interval_s >= 0.0, "energy poll interval must be ≥ 0 s (got {})",
          o.poll_interval_s);

    bool cpu_measured = false, ram_measured = false;
    const auto add = [&](const std::string& name, MeterOpenResult r) {
        if (!r.meter) {
            status_.push_back({name, false, r.unavailable_reason});
            return;
        }
        std::vector<std::string> parts;
        for (const auto& s : r.meter->sources()) {
            parts.push_back(s.key + ": " + s.method);
            cpu_measured |= s.key == kSourceCpu;
            ram_measured |= s.key == kSourceRam;
        }
        parts.insert(parts.end(), r.notes.begin(), r.notes.end());
        status_.push_back({name, true, join(parts, "; ")});
        meters_.push_back(std::move(r.meter));
    };
    if (o.use_rapl) {
        add("rapl", open_powercap_meter(o.powercap_root.empty()
                                            ? default_powercap_roots()
                                            : std::vector<std::filesystem::path>{o.powercap_root}));
    } else {
        status_.push_back({"rapl", false, "off (--no-rapl)"});
    }
    if (o.use_nvml) {
        add("nvml", open_nvml_meter(o.nvml_library, &gpu_models_));
    } else {
        status_.push_back({"nvml", false, "off (--no-nvml)"});
    }
    if (!cpu_measured || !ram_measured) {
        EstimateSettings s;
        s.cpu = !cpu_measured;
        s.ram = !ram_measured;
        const std::string model = o.cpu_model.empty() ? host_.cpu_model : o.cpu_model;
        if (o.cpu_tdp_per_core > 0.0) {
            s.tdp_per_core_w = o.cpu_tdp_per_core;
            s.tdp_origin = "--cpu-tdp";
        } else if (const CpuTdp* row = tables.find_cpu(model)) {
            s.tdp_per_core_w = row->tdp_per_core_w;
            s.tdp_origin = fmt::format("TDP_cpu.csv '{}'", row->model);
        } else {
            s.tdp_per_core_w = tables.default_cpu().tdp_per_core_w;
            s.tdp_origin = fmt::format("TDP_cpu.csv 'Any' (CPU '{}' not listed)",
                                       model.empty() ? "unknown" : model);
        }
        s.cores = o.cores > 0 ? o.cores : host_.usable_cpus;
        s.cpu_usage = o.cpu_usage;
        s.memory_gb = o.memory_gb;
        s.memory_w_per_gb = tables.reference("memoryPower");
        add("estimate",
            {make_estimate_meter(s, usage ? std::move(usage) : UsageSource(self_usage)), {}, {}});
    }

    MonitorSettings settings;
    if (o.poll_interval_s > 0.0) {
        settings.poll_interval_s = o.poll_interval_s;
    } else {
        double need = kMaxPollS;
        for (const auto& m : meters_) need = std::min(need, m->max_read_interval_s());
        settings.poll_interval_s = std::max(kMinPollS, need);
    }
    init(std::move(settings));
}

EnergyMonitor::EnergyMonitor(std::vector<std::unique_ptr<EnergyMeter>> meters,
                             CarbonSettings carbon, MonitorSettings settings)
    : meters_(std::move(meters)),
      carbon_(std::move(carbon)),
      host_(host_info()),
      project_name_("greenmoe"),
      run_id_(make_uuid4()) {
    for (const auto& m : meters_) status_.push_back({m->name(), true, ""});
    init(std::move(settings));
}

void EnergyMonitor::init(MonitorSettings settings) {
    std::set<std::string> keys;
    for (const auto& m : meters_) {
        for (const auto& s : m->sources()) {
            check(keys.insert(s.key).second, "energy source '{}' is reported by two meters", s.key);
            sources_.push_back(s);
            source_meters_.push_back(m->name());
        }
    }
    if (settings.clock) {
        clock_ = std::move(settings.clock);
    } else {
        clock_ = [] {
            return std::chrono::duration<double>(
                       std::chrono::steady_clock::now().time_since_epoch())
                .count();
        };
    }
    now_.joules.assign(sources_.size(), 0.0);
    {
        std::lock_guard lock(mutex_);
        read_locked();
        start_ = now_;
    }
    if (settings.poll_interval_s > 0.0 && !meters_.empty()) {
        poller_ = std::thread([this, interval = settings.poll_interval_s] { poll_loop(interval); });
    }
}

EnergyMonitor::~EnergyMonitor() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    stop_cv_.notify_all();
    if (poller_.joinable()) poller_.join();
}

void EnergyMonitor::poll_loop(double interval_s) {
    const auto interval = std::chrono::duration<double>(interval_s);
    std::unique_lock lock(mutex_);
    while (!stop_) {
        if (stop_cv_.wait_for(lock, interval, [this] { return stop_; })) break;
        read_locked();
    }
}

void EnergyMonitor::read_locked() {
    now_.time_s = clock_();
    size_t offset = 0;
    for (auto& m : meters_) {
        const size_t n = m->sources().size();
        m->read(now_.time_s, std::span<double>(now_.joules.data() + offset, n));
        offset += n;
    }
}

EnergyMeasurement EnergyMonitor::measure_locked(const std::string& name,
                                                const Snapshot& from) const {
    EnergyMeasurement m;
    m.name = name;
    m.seconds = std::max(0.0, now_.time_s - from.time_s);
    std::vector<std::string> parts;
    bool all_measured = true, any_measured = false;
    for (size_t i = 0; i < sources_.size(); ++i) {
        const auto& s = sources_[i];
        const double j = std::max(0.0, now_.joules[i] - from.joules[i]);
        m.joules[s.key] = j;
        m.source_measured[s.key] = s.measured;
        m.total_joules += j;
        m.total_joules_with_pue += j * (s.measured ? carbon_.pue_measured : carbon_.pue_estimated);
        all_measured &= s.measured;
        any_measured |= s.measured;
    }
    m.measured = !sources_.empty() && all_measured;
    m.pue = m.total_joules > 0.0 ? m.total_joules_with_pue / m.total_joules
                                 : (all_measured ? carbon_.pue_measured : carbon_.pue_estimated);
    m.kwh = m.total_joules_with_pue / kJoulesPerKwh;
    m.co2e_g = m.kwh * carbon_.location.g_per_kwh;

    if (sources_.empty()) {
        m.source_label = enabled_ ? "no meter" : "not measured (--no-energy)";
    } else if (all_measured || !any_measured) {
        std::vector<std::string> keys, meters;
        for (size_t i = 0; i < sources_.size(); ++i) {
            keys.push_back(sources_[i].key);
            const std::string meter = display_meter(source_meters_[i]);
            if (std::find(meters.begin(), meters.end(), meter) == meters.end()) {
                meters.push_back(meter);
            }
        }
        m.source_label = fmt::format("{}: {} ({})", all_measured ? "measured" : "estimated",
                                     join(keys, ", "), join(meters, " + "));
    } else {
        for (size_t i = 0; i < sources_.size(); ++i) {
            parts.push_back(fmt::format("{} {} ({})", sources_[i].key,
                                        sources_[i].measured ? "measured" : "estimated",
                                        display_meter(source_meters_[i])));
        }
        m.source_label = "mixed: " + join(parts, ", ");
    }
    return m;
}

void EnergyMonitor::begin_window(const std::string& name) {
    std::lock_guard lock(mutex_);
    check(!windows_.contains(name), "energy window '{}' is already open", name);
    read_locked();
    windows_[name] = now_;
}

EnergyMeasurement EnergyMonitor::end_window(const std::string& name) {
    std::lock_guard lock(mutex_);
    const auto it = windows_.find(name);
    check(it != windows_.end(), "energy window '{}' was never opened (or is already closed)", name);
    read_locked();
    EnergyMeasurement m = measure_locked(name, it->second);
    windows_.erase(it);
    return m;
}

EnergyMeasurement EnergyMonitor::peek(const std::string& name) {
    std::lock_guard lock(mutex_);
    const auto it = windows_.find(name);
    check(it != windows_.end(), "energy window '{}' is not open", name);
    read_locked();
    return measure_locked(name, it->second);
}

bool EnergyMonitor::window_open(const std::string& name) const {
    std::lock_guard lock(mutex_);
    return windows_.contains(name);
}

EnergyMeasurement EnergyMonitor::total() {
    std::lock_guard lock(mutex_);
    read_locked();
    return measure_locked("total", start_);
}

std::string EnergyMonitor::progress_text(const EnergyMeasurement& m) const {
    if (!enabled_) return "energy off";
    // Energy figures say that they include the PUE, as the log and the report do.
    return fmt::format("{}{} incl. PUE {:.3g}, {}", format_energy(m.total_joules_with_pue),
                       m.measured ? "" : " est.", m.pue, format_co2e(m.co2e_g));
}

std::string EnergyMonitor::summary_line(const EnergyMeasurement& m) const {
    if (!enabled_) return "energy: not measured (--no-energy)";
    return fmt::format(
        "energy: {} in {:.1f} s, {}; {} incl. PUE {:.3g} = {:.4g} kWh; {} at {} ({:g} gCO2e/kWh). "
        "{}",
        format_energy(m.total_joules), m.seconds, m.source_label,
        format_energy(m.total_joules_with_pue), m.pue, m.kwh, format_co2e(m.co2e_g),
        location_label(carbon_.location), carbon_.location.g_per_kwh, kGreenAlgorithmsCredit);
}

std::string EnergyMonitor::summary_line() {
    return summary_line(total());
}

std::string EnergyMonitor::report(const EnergyMeasurement& m) const {
    if (!enabled_) return "energy: not measured (--no-energy)\n";
    std::string out;
    out += fmt::format("  time       {:.3f} s\n", m.seconds);
    for (size_t i = 0; i < sources_.size(); ++i) {
        const auto& s = sources_[i];
        const double j = m.joules.contains(s.key) ? m.joules.at(s.key) : 0.0;
        out += fmt::format("  {:<10} {:>12}  {:<9}  {}\n", s.key, format_energy(j),
                           s.measured ? "measured" : "estimated", s.method);
    }
    out += fmt::format("  hardware   {:>12}  {}\n", format_energy(m.total_joules), m.source_label);
    out += fmt::format("  with PUE   {:>12}  PUE {:.3g}: {}\n",
                       format_energy(m.total_joules_with_pue), m.pue, carbon_.pue_origin);
    out += fmt::format("  energy     {:.4g} kWh\n", m.kwh);
    out += fmt::format("  carbon     {}  at {} [{}], {:g} gCO2e/kWh\n", format_co2e(m.co2e_g),
                       location_label(carbon_.location), carbon_.location.location,
                       carbon_.location.g_per_kwh);
    const Equivalences e = equivalences(m.co2e_g, carbon_);
    out += fmt::format(
        "  ≈          {:.3g} tree-months of absorption, {:.3g} km by car, {:.3g} Paris–London "
        "flights\n",
        e.tree_months, e.car_km, e.flight_share);
    for (const auto& st : status_) {
        out += fmt::format("  meter {:<8} {}{}\n", st.name,
                           st.available ? "" : "unavailable: ", st.detail);
    }
    out +=
        "  Measured = read from hardware counters (RAPL, NVML); estimated = Green Algorithms "
        "model (CPU time × TDP per core + memory × 0.3725 W/GB).\n";
    out += fmt::format("  {}\n", kGreenAlgorithmsCredit);
    return out;
}

EmissionsRow EnergyMonitor::emissions_row(const EnergyMeasurement& m) const {
    EmissionsRow r;
    r.timestamp = emissions_timestamp_now();
    r.project_name = project_name_;
    r.run_id = run_id_;
    r.experiment_id = experiment_id_;
    r.duration_s = m.seconds;
    r.emissions_kg = m.co2e_g / 1e3;
    r.emissions_rate_kg_per_s = m.seconds > 0.0 ? r.emissions_kg / m.seconds : 0.0;
    const auto joules = [&](std::string_view key) {
        const auto it = m.joules.find(std::string(key));
        return it == m.joules.end() ? 0.0 : it->second;
    };
    const auto power = [&](std::string_view key) {
        return m.seconds > 0.0 ? joules(key) / m.seconds : 0.0;
    };
    r.cpu_power_w = power(kSourceCpu);
    r.gpu_power_w = power(kSourceGpu);
    r.ram_power_w = power(kSourceRam);
    // CodeCarbon's energies include the PUE, each source with its own, so that they add up
    // to energy_consumed; its powers are the hardware's.
    const auto kwh_with_pue = [&](std::string_view key) {
        const auto it = m.source_measured.find(std::string(key));
        const bool measured = it != m.source_measured.end() && it->second;
        return joules(key) * (measured ? carbon_.pue_measured : carbon_.pue_estimated) /
               kJoulesPerKwh;
    };
    r.cpu_energy_kwh = kwh_with_pue(kSourceCpu);
    r.gpu_energy_kwh = kwh_with_pue(kSourceGpu);
    r.ram_energy_kwh = kwh_with_pue(kSourceRam);
    r.energy_consumed_kwh = m.kwh;
    const CarbonIntensity& l = carbon_.location;
    r.country_name = l.location == "WORLD" ? "World" : l.country;
    if (l.location != "WORLD") r.country_iso_code = l.location.substr(0, l.location.find('-'));
    if (l.region != "Any") r.region = l.region;
    r.cloud_provider = carbon_.cloud_provider;
    r.cloud_region = carbon_.cloud_region;
    r.os = host_.os;
    r.codecarbon_version = fmt::format("greenmoe-{}", embedded_greenmoe_version());
    r.cpu_count = host_.cpu_count;
    r.cpu_model = host_.cpu_model;
    r.gpu_count = static_cast<int>(gpu_models_.size());
    if (!gpu_models_.empty()) {
        std::map<std::string, int> counts;
        for (const auto& g : gpu_models_) ++counts[g];
        std::vector<std::string> parts;
        for (const auto& [model, n] : counts) parts.push_back(fmt::format("{} x {}", n, model));
        r.gpu_model = join(parts, ", ");
    }
    r.ram_total_size_gb = host_.ram_total_gb;
    const auto cpu = std::find_if(sources_.begin(), sources_.end(),
                                  [](const EnergySource& s) { return s.key == kSourceCpu; });
    r.tracking_mode = cpu != sources_.end() && cpu->measured ? "machine" : "process";
    r.on_cloud =
        !carbon_.cloud_provider.empty() && !iequals(carbon_.cloud_provider, "Unknown") ? "Y" : "N";
    r.pue = m.pue;
    return r;
}

}  // namespace greenmoe

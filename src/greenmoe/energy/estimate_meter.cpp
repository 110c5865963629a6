// Green Algorithms estimate meter (see estimate_meter.h).
#include "greenmoe/energy/estimate_meter.h"

#include <fmt/format.h>

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace {

constexpr double kBytesPerGb = 1024.0 * 1024.0 * 1024.0;

class EstimateMeter final : public EnergyMeter {
  public:
    EstimateMeter(const EstimateSettings& s, UsageSource usage)
        : settings_(s), usage_(std::move(usage)) {
        if (s.cpu) {
            const std::string how =
                s.cpu_usage > 0.0
                    ? fmt::format("time × {} cores × {:g} W/core × usage {:g} (given)", s.cores,
                                  s.tdp_per_core_w, s.cpu_usage)
                    : fmt::format("CPU time × {:g} W/core", s.tdp_per_core_w);
            sources_.push_back(
                {std::string(kSourceCpu), false,
                 fmt::format("Green Algorithms: {}, TDP from {}", how, s.tdp_origin)});
        }
        if (s.ram) {
            const std::string memory = s.memory_gb > 0.0
                                           ? fmt::format("{:g} GB (given)", s.memory_gb)
                                           : std::string("peak RSS");
            sources_.push_back({std::string(kSourceRam), false,
                                fmt::format("Green Algorithms: {} × {:g} W/GB × time", memory,
                                            s.memory_w_per_gb)});
        }
    }

    std::string name() const override { return "estimate"; }
    const std::vector<EnergySource>& sources() const override { return sources_; }

    void read(double now_s, std::span<double> joules) override {
        const ProcessUsage u = usage_();
        if (!started_) {
            started_ = true;
            start_s_ = last_s_ = now_s;
            start_cpu_s_ = u.cpu_seconds;
        }
        const double dt = std::max(0.0, now_s - last_s_);
        last_s_ = std::max(last_s_, now_s);
        const double gb =
            settings_.memory_gb > 0.0 ? settings_.memory_gb : u.peak_rss_bytes / kBytesPerGb;
        ram_j_ += dt * gb * settings_.memory_w_per_gb;

        double cpu_j;
        if (settings_.cpu_usage > 0.0) {
            cpu_j = (last_s_ - start_s_) * settings_.cores * settings_.tdp_per_core_w *
                    settings_.cpu_usage;
        } else {
            cpu_j = std::max(0.0, u.cpu_seconds - start_cpu_s_) * settings_.tdp_per_core_w;
        }
        size_t i = 0;
        if (settings_.cpu) joules[i++] = cpu_j;
        if (settings_.ram) joules[i++] = ram_j_;
    }

  private:
    EstimateSettings settings_;
    UsageSource usage_;
    std::vector<EnergySource> sources_;
    bool started_ = false;
    double start_s_ = 0.0, last_s_ = 0.0, start_cpu_s_ = 0.0, ram_j_ = 0.0;
};

}  // namespace

std::unique_ptr<EnergyMeter> make_estimate_meter(const EstimateSettings& settings,
                                                 UsageSource usage) {
    check(settings.tdp_per_core_w > 0.0, "CPU TDP per core must be > 0 W (got {})",
          settings.tdp_per_core_w);
    check(settings.cores >= 1, "--cores must be ≥ 1 (got {})", settings.cores);
    check(settings.cpu_usage >= 0.0 && settings.cpu_usage <= 1.0,
          "--cpu-usage must be in (0, 1] (got {})", settings.cpu_usage);
    check(settings.memory_gb >= 0.0, "--memory-gb must be ≥ 0 (got {})", settings.memory_gb);
    return std::make_unique<EstimateMeter>(settings, std::move(usage));
}

}  // namespace greenmoe

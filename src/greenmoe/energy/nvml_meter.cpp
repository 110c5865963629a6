// NVML energy meter (see nvml_meter.h).
#include "greenmoe/energy/nvml_meter.h"

#include <dlfcn.h>

#include <algorithm>

#include <fmt/format.h>

namespace greenmoe {

namespace {

using NvmlReturn = NvmlApi::Return;
using NvmlDevice = NvmlApi::Device;
constexpr NvmlReturn kNvmlSuccess = 0;

// NVML refreshes its power reading about every 20–100 ms; integrating it needs reads at
// least this often.
constexpr double kPowerPollS = 0.1;

std::string describe(const NvmlApi& api, NvmlReturn r) {
    const char* s = api.error_string ? api.error_string(r) : nullptr;
    return s ? fmt::format("{} (NVML error {})", s, r) : fmt::format("NVML error {}", r);
}

void close_library(const NvmlApi& api) {
    if (api.library) dlclose(api.library);
}

struct Gpu {
    NvmlDevice device = nullptr;
    bool counter = false;  // energy counter (true) or integrated power
    unsigned long long first_mj = 0, last_mj = 0;
    double power_w = 0.0, power_time_s = -1.0, integrated_j = 0.0;
};

class NvmlMeter final : public EnergyMeter {
  public:
    NvmlMeter(NvmlApi api, std::vector<Gpu> gpus, std::string method)
        : api_(api), gpus_(std::move(gpus)) {
        sources_.push_back({std::string(kSourceGpu), true, std::move(method)});
    }
    ~NvmlMeter() override {
        api_.shutdown();
        close_library(api_);
    }
    NvmlMeter(const NvmlMeter&) = delete;
    NvmlMeter& operator=(const NvmlMeter&) = delete;

    std::string name() const override { return "nvml"; }
    const std::vector<EnergySource>& sources() const override { return sources_; }

    void read(double now_s, std::span<double> joules) override {
        double total = 0.0;
        for (auto& g : gpus_) {
            if (g.counter) {
                unsigned long long mj = 0;
                if (api_.get_energy(g.device, &mj) == kNvmlSuccess && mj >= g.last_mj) {
                    g.last_mj = mj;
                }
                total += double(g.last_mj - g.first_mj) * 1e-3;
            } else {
                unsigned int mw = 0;
                if (api_.get_power(g.device, &mw) == kNvmlSuccess) {
                    const double w = mw * 1e-3;
                    if (g.power_time_s >= 0.0 && now_s > g.power_time_s) {
                        g.integrated_j += 0.5 * (g.power_w + w) * (now_s - g.power_time_s);
                    }
                    g.power_w = w;
                    g.power_time_s = now_s;
                }
                total += g.integrated_j;
            }
        }
        joules[0] = total;
    }

    double max_read_interval_s() const override {
        const bool any_power =
            std::any_of(gpus_.begin(), gpus_.end(), [](const Gpu& g) { return !g.counter; });
        return any_power ? kPowerPollS : std::numeric_limits<double>::infinity();
    }

  private:
    NvmlApi api_;
    std::vector<Gpu> gpus_;
    std::vector<EnergySource> sources_;
};

template <typename F>
bool bind(void* library, const char* symbol, F& out, std::string& missing) {
    out = reinterpret_cast<F>(dlsym(library, symbol));
    if (!out && missing.empty()) missing = symbol;
    return out != nullptr;
}

}  // namespace

MeterOpenResult open_nvml_meter(const std::string& library, std::vector<std::string>* gpu_models) {
    MeterOpenResult result;
    NvmlApi api;
    api.library = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!api.library) {
        const char* why = dlerror();
        result.unavailable_reason = fmt::format("cannot load {} (no NVIDIA driver): {}", library,
                                                why ? why : "unknown error");
        return result;
    }
    std::string missing;
    bind(api.library, "nvmlInit_v2", api.init, missing);
    bind(api.library, "nvmlShutdown", api.shutdown, missing);
    bind(api.library, "nvmlDeviceGetCount_v2", api.get_count, missing);
    bind(api.library, "nvmlDeviceGetHandleByIndex_v2", api.get_handle, missing);
    bind(api.library, "nvmlDeviceGetTotalEnergyConsumption", api.get_energy, missing);
    bind(api.library, "nvmlDeviceGetPowerUsage", api.get_power, missing);
    bind(api.library, "nvmlDeviceGetName", api.get_name, missing);
    api.error_string =
        reinterpret_cast<const char* (*)(NvmlReturn)>(dlsym(api.library, "nvmlErrorString"));
    if (!missing.empty()) {
        result.unavailable_reason = fmt::format("{} lacks {}", library, missing);
        dlclose(api.library);
        return result;
    }
    return open_nvml_meter_with(api, gpu_models);
}

MeterOpenResult open_nvml_meter_with(const NvmlApi& api, std::vector<std::string>* gpu_models) {
    MeterOpenResult result;
    if (!api.init || !api.shutdown || !api.get_count || !api.get_handle || !api.get_energy ||
        !api.get_power || !api.get_name) {
        result.unavailable_reason = "an NVML entry point is missing";
        close_library(api);
        return result;
    }
    if (const NvmlReturn r = api.init(); r != kNvmlSuccess) {
        result.unavailable_reason = "nvmlInit failed: " + describe(api, r);
        close_library(api);
        return result;
    }
    const auto close_with = [&](std::string reason) {
        result.unavailable_reason = std::move(reason);
        api.shutdown();
        close_library(api);
    };
    unsigned int count = 0;
    if (const NvmlReturn r = api.get_count(&count); r != kNvmlSuccess) {
        close_with("nvmlDeviceGetCount failed: " + describe(api, r));
        return result;
    }
    std::vector<Gpu> gpus;
    std::vector<std::string> names;
    int counters = 0;
    for (unsigned int i = 0; i < count; ++i) {
        Gpu g;
        if (api.get_handle(i, &g.device) != kNvmlSuccess) {
            result.notes.push_back(fmt::format("GPU {}: no NVML handle, not measured", i));
            continue;
        }
        char name[96] = {};
        const std::string model =
            api.get_name(g.device, name, sizeof name) == kNvmlSuccess ? name : "NVIDIA GPU";
        unsigned long long mj = 0;
        unsigned int mw = 0;
        if (api.get_energy(g.device, &mj) == kNvmlSuccess) {
            g.counter = true;
            g.first_mj = g.last_mj = mj;
            ++counters;
        } else if (api.get_power(g.device, &mw) == kNvmlSuccess) {
            result.notes.push_back(
                fmt::format("GPU {} ({}): no energy counter, power integrated every {} s", i, model,
                            kPowerPollS));
        } else {
            result.notes.push_back(fmt::format(
                "GPU {} ({}): neither energy nor power readable, not measured", i, model));
            continue;
        }
        gpus.push_back(g);
        names.push_back(model);
    }
    if (gpus.empty()) {
        close_with(count == 0 ? "NVML sees no GPU" : "no GPU's energy or power is readable");
        return result;
    }
    std::string method = fmt::format("NVML {} ({} GPU{})",
                                     counters == int(gpus.size()) ? "energy counter"
                                     : counters == 0              ? "power × time"
                                                     : "energy counter / power × time",
                                     gpus.size(), gpus.size() > 1 ? "s" : "");
    if (gpu_models) *gpu_models = names;
    result.meter = std::make_unique<NvmlMeter>(api, std::move(gpus), std::move(method));
    return result;
}

}  // namespace greenmoe

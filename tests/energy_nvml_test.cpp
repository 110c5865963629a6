// NVML loaded at run time: a missing library or one without NVML is a reason, not a crash.
#include <cstdio>
#include <limits>
#include <span>

#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/energy/nvml_meter.h"
#include "test_support.h"

namespace greenmoe {
namespace {

TEST(EnergyNvml, MissingLibraryIsUnavailableWithTheReason) {
    std::vector<std::string> models = {"untouched"};
    auto r = open_nvml_meter("libnvidia-ml-greenmoe-absent.so.1", &models);
    EXPECT_FALSE(r.meter);
    EXPECT_NE(r.unavailable_reason.find("cannot load libnvidia-ml-greenmoe-absent.so.1"),
              std::string::npos)
        << r.unavailable_reason;
    EXPECT_EQ(models, std::vector<std::string>{"untouched"});
}

TEST(EnergyNvml, LibraryWithoutNvmlSymbolsIsUnavailable) {
    auto r = open_nvml_meter("libm.so.6", nullptr);
    EXPECT_FALSE(r.meter);
    EXPECT_NE(r.unavailable_reason.find("lacks nvmlInit_v2"), std::string::npos)
        << r.unavailable_reason;
}

TEST(EnergyNvml, MonitorReportsNvmlUnavailableAndStillWorks) {
    testing::TempDir empty_powercap;
    EnergyOptions o;
    o.powercap_root = empty_powercap.path().string();
    o.nvml_library = "libnvidia-ml-greenmoe-absent.so.1";
    EnergyMonitor monitor(o);
    const auto& status = monitor.meter_status();
    ASSERT_EQ(status.size(), 3u);
    EXPECT_EQ(status[1].name, "nvml");
    EXPECT_FALSE(status[1].available);
    EXPECT_NE(status[1].detail.find("cannot load"), std::string::npos);
    EXPECT_EQ(status[2].name, "estimate");
    EXPECT_TRUE(status[2].available);
    EXPECT_EQ(monitor.sources().size(), 2u);  // cpu and ram, estimated; no gpu source
}

// Fake NVML entry points: plain functions (NVML has no context argument), so their devices
// live in this file; each test resets them.
struct FakeGpu {
    bool counter = true;
    unsigned long long energy_mj = 0;
    unsigned int power_mw = 0;
    const char* name = "NVIDIA Fake 80GB";
};
struct FakeNvml {
    int init_result = 0;
    std::vector<FakeGpu> gpus;
    int shutdowns = 0;
};
FakeNvml fake;

NvmlApi::Device device_of(unsigned int i) {
    return reinterpret_cast<NvmlApi::Device>(size_t(i) + 1);
}
FakeGpu& gpu_of(NvmlApi::Device d) {
    return fake.gpus.at(reinterpret_cast<size_t>(d) - 1);
}

NvmlApi fake_api() {
    NvmlApi api;
    api.init = [] { return fake.init_result; };
    api.shutdown = [] {
        ++fake.shutdowns;
        return 0;
    };
    api.get_count = [](unsigned int* n) {
        *n = static_cast<unsigned int>(fake.gpus.size());
        return 0;
    };
    api.get_handle = [](unsigned int i, NvmlApi::Device* d) {
        *d = device_of(i);
        return 0;
    };
    api.get_energy = [](NvmlApi::Device d, unsigned long long* mj) {
        if (!gpu_of(d).counter) return 3;  // NVML_ERROR_NOT_SUPPORTED
        *mj = gpu_of(d).energy_mj;
        return 0;
    };
    api.get_power = [](NvmlApi::Device d, unsigned int* mw) {
        *mw = gpu_of(d).power_mw;
        return 0;
    };
    api.get_name = [](NvmlApi::Device d, char* name, unsigned int n) {
        std::snprintf(name, n, "%s", gpu_of(d).name);
        return 0;
    };
    api.error_string = [](int r) { return r == 1 ? "Uninitialized" : "Unknown Error"; };
    return api;
}

double read_gpu(EnergyMeter& meter, double now_s) {
    double j = -1.0;
    meter.read(now_s, std::span<double>(&j, 1));
    return j;
}

TEST(EnergyNvml, EnergyCounterDifferences) {
    fake = {};
    fake.gpus = {FakeGpu{true, 1000, 0, "NVIDIA H100 80GB HBM3"}};
    std::vector<std::string> models;
    auto r = open_nvml_meter_with(fake_api(), &models);
    ASSERT_TRUE(r.meter) << r.unavailable_reason;
    EXPECT_EQ(models, std::vector<std::string>{"NVIDIA H100 80GB HBM3"});
    EXPECT_EQ(r.meter->sources()[0].key, "gpu");
    EXPECT_TRUE(r.meter->sources()[0].measured);
    EXPECT_EQ(r.meter->sources()[0].method, "NVML energy counter (1 GPU)");
    EXPECT_EQ(r.meter->max_read_interval_s(), std::numeric_limits<double>::infinity());
    EXPECT_DOUBLE_EQ(read_gpu(*r.meter, 0.0), 0.0);
    fake.gpus[0].energy_mj = 4500;
    EXPECT_DOUBLE_EQ(read_gpu(*r.meter, 1.0), 3.5);
    r.meter.reset();
    EXPECT_EQ(fake.shutdowns, 1);
}

TEST(EnergyNvml, PowerIsIntegratedWhereTheCounterIsUnsupported) {
    fake = {};
    fake.gpus = {FakeGpu{false, 0, 100000, "old GPU"}, FakeGpu{true, 0, 0, "new GPU"}};
    auto r = open_nvml_meter_with(fake_api(), nullptr);
    ASSERT_TRUE(r.meter) << r.unavailable_reason;
    EXPECT_EQ(r.meter->sources()[0].method, "NVML energy counter / power × time (2 GPUs)");
    ASSERT_EQ(r.notes.size(), 1u);
    EXPECT_NE(r.notes[0].find("old GPU"), std::string::npos);
    EXPECT_DOUBLE_EQ(r.meter->max_read_interval_s(), 0.1);
    EXPECT_DOUBLE_EQ(read_gpu(*r.meter, 10.0), 0.0);  // first power sample: nothing yet
    fake.gpus[0].power_mw = 200000;
    fake.gpus[1].energy_mj = 2000;
    // Trapezoid: (100 W + 200 W) / 2 × 1 s = 150 J, plus the counter's 2 J.
    EXPECT_DOUBLE_EQ(read_gpu(*r.meter, 11.0), 152.0);
    EXPECT_DOUBLE_EQ(read_gpu(*r.meter, 13.0), 552.0);  // 200 W × 2 s more
}

TEST(EnergyNvml, FailuresAreReasons) {
    fake = {};
    fake.init_result = 1;
    auto r = open_nvml_meter_with(fake_api(), nullptr);
    EXPECT_FALSE(r.meter);
    EXPECT_EQ(r.unavailable_reason, "nvmlInit failed: Uninitialized (NVML error 1)");
    fake = {};
    r = open_nvml_meter_with(fake_api(), nullptr);
    EXPECT_FALSE(r.meter);
    EXPECT_EQ(r.unavailable_reason, "NVML sees no GPU");
    EXPECT_EQ(fake.shutdowns, 1);
    NvmlApi incomplete = fake_api();
    incomplete.get_power = nullptr;
    EXPECT_EQ(open_nvml_meter_with(incomplete, nullptr).unavailable_reason,
              "an NVML entry point is missing");
}

}  // namespace
}  // namespace greenmoe

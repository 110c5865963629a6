// The Green Algorithms estimate against hand-computed values, and its fallbacks.
#include <sys/wait.h>
#include <time.h>

#include <memory>

#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/energy/estimate_meter.h"
#include "greenmoe/energy/green_algorithms_tables.h"
#include "greenmoe/energy/host_info.h"
#include "greenmoe/energy/process_usage.h"
#include "test_support.h"

namespace greenmoe {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Spins until this thread has used `seconds` of CPU time (wall time would depend on load).
void burn_cpu_seconds(double seconds) {
    timespec t0{}, t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    volatile double x = 0.0;
    do {
        for (int i = 0; i < 10000; ++i) x = x + 1.0;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) * 1e-9 < seconds);
}

struct FakeProcess {
    double now_s = 0.0;
    ProcessUsage usage;
};

TEST(EnergyEstimate, MatchesTheGreenAlgorithmsFormulaByHand) {
    // Xeon Gold 6148: TDP_per_core 7.5 W (TDP_cpu.csv). A job of 100 s on 4 cores using
    // 200 s of CPU time (usage 0.5) with 2 GB peak memory, in France (51.28 g/kWh), no PUE
    // given (estimates get 1.56):
    //   cpu  = 100 × 4 × 7.5 × 0.5      = 1500 J
    //   ram  = 100 × 2 × 0.3725         =   74.5 J
    //   with PUE (1500 + 74.5) × 1.56   = 2456.22 J = 6.82283e-4 kWh
    //   CO2e = 6.82283e-4 × 51.28       = 0.0349875 g
    const auto tables = GreenAlgorithmsTables::builtin();
    const CpuTdp* cpu = tables.find_cpu("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz");
    ASSERT_NE(cpu, nullptr);
    EstimateSettings s;
    s.tdp_per_core_w = cpu->tdp_per_core_w;
    s.tdp_origin = "test";
    s.cores = 4;
    s.memory_w_per_gb = tables.reference("memoryPower");
    auto process = std::make_shared<FakeProcess>();
    process->usage.peak_rss_bytes = 2 * kGiB;
    std::vector<std::unique_ptr<EnergyMeter>> meters;
    meters.push_back(make_estimate_meter(s, [process] { return process->usage; }));
    EnergyOptions o;
    o.location = "FR";
    EnergyMonitor monitor(std::move(meters), resolve_carbon(o, tables),
                          {0.0, [process] { return process->now_s; }});

    monitor.begin_window("job");
    process->now_s = 100.0;
    process->usage.cpu_seconds = 200.0;
    const auto m = monitor.end_window("job");
    EXPECT_DOUBLE_EQ(m.seconds, 100.0);
    EXPECT_DOUBLE_EQ(m.joules.at("cpu"), 1500.0);
    EXPECT_NEAR(m.joules.at("ram"), 74.5, 1e-9);
    EXPECT_NEAR(m.total_joules, 1574.5, 1e-9);
    EXPECT_NEAR(m.total_joules_with_pue, 2456.22, 1e-9);
    EXPECT_NEAR(m.pue, 1.56, 1e-12);
    EXPECT_NEAR(m.kwh, 6.822833333e-4, 1e-12);
    EXPECT_NEAR(m.co2e_g, 0.034987489, 1e-8);
    EXPECT_FALSE(m.measured);
    EXPECT_FALSE(m.source_measured.at("cpu"));
    EXPECT_EQ(m.source_label, "estimated: cpu, ram (Green Algorithms)");
}

TEST(EnergyEstimate, FixedUsageAndMemoryOverrides) {
    // --cores 4 --cpu-usage 0.5 --memory-gb 8 over 10 s at 7.5 W/core:
    //   cpu = 10 × 4 × 7.5 × 0.5 = 150 J; ram = 10 × 8 × 0.3725 = 29.8 J (CPU time ignored).
    EstimateSettings s;
    s.tdp_per_core_w = 7.5;
    s.cores = 4;
    s.cpu_usage = 0.5;
    s.memory_gb = 8.0;
    auto meter = make_estimate_meter(s, [] { return ProcessUsage{999.0, 1.0}; });
    std::vector<double> j(2);
    meter->read(5.0, j);
    meter->read(15.0, j);
    EXPECT_DOUBLE_EQ(j[0], 150.0);
    EXPECT_NEAR(j[1], 29.8, 1e-12);
    EXPECT_NE(meter->sources()[0].method.find("usage 0.5 (given)"), std::string::npos);

    s.cpu_usage = 1.5;
    EXPECT_NE(
        testing::error_message([&] { make_estimate_meter(s, self_usage); }).find("--cpu-usage"),
        std::string::npos);
}

TEST(EnergyEstimate, UnknownCpuUsesTheAnyRow) {
    testing::TempDir empty_powercap;
    EnergyOptions o;
    o.powercap_root = empty_powercap.path().string();
    o.use_nvml = false;
    o.cpu_model = "Imaginary CPU 9000";
    EnergyMonitor monitor(o);
    ASSERT_EQ(monitor.sources().size(), 2u);
    EXPECT_EQ(monitor.sources()[0].method,
              "Green Algorithms: CPU time × 12 W/core, TDP from TDP_cpu.csv 'Any' (CPU "
              "'Imaginary CPU 9000' not listed)");
    o.cpu_model = "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz";
    EnergyMonitor known(o);
    EXPECT_NE(known.sources()[0].method.find("7.5 W/core, TDP from TDP_cpu.csv 'Xeon Gold 6148'"),
              std::string::npos);
    o.cpu_tdp_per_core = 3.0;
    EnergyMonitor given(o);
    EXPECT_NE(given.sources()[0].method.find("3 W/core, TDP from --cpu-tdp"), std::string::npos);
}

TEST(EnergyEstimate, CountsThisProcessCpuTime) {
    testing::TempDir empty_powercap;
    EnergyOptions o;
    o.powercap_root = empty_powercap.path().string();
    o.use_nvml = false;
    o.cpu_tdp_per_core = 10.0;
    o.location = "DE";
    EnergyMonitor monitor(o);
    monitor.begin_window("busy");
    const ProcessUsage before = self_usage();
    burn_cpu_seconds(0.03);
    const double cpu = self_usage().cpu_seconds - before.cpu_seconds;
    const auto m = monitor.end_window("busy");
    // The window's reads bracket the two self_usage() calls.
    EXPECT_GE(m.joules.at("cpu"), cpu * 10.0);
    EXPECT_LE(m.joules.at("cpu"), (cpu + 0.05) * 10.0);
    EXPECT_GT(m.joules.at("ram"), 0.0);
    EXPECT_NEAR(m.co2e_g, m.kwh * 338.66, 1e-12);
}

TEST(EnergyEstimate, ProcStatAndStatusParsing) {
    // comm may hold spaces and ')'; utime stime cutime cstime = 100 50 20 10 ticks.
    const std::string stat =
        "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 100 50 20 10 20 0 1 0 5 "
        "1000 200";
    const auto cpu = cpu_seconds_from_proc_stat(stat, 100);
    ASSERT_TRUE(cpu);
    EXPECT_DOUBLE_EQ(*cpu, 1.8);
    EXPECT_FALSE(cpu_seconds_from_proc_stat("4242 (x) S 1 2", 100));
    const auto rss =
        peak_rss_from_proc_status("Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\n");
    ASSERT_TRUE(rss);
    EXPECT_DOUBLE_EQ(*rss, 2048.0 * 1024.0);
    EXPECT_FALSE(peak_rss_from_proc_status("Name:\tx\n"));
    EXPECT_EQ(cpu_model_from_cpuinfo("processor\t: 0\nmodel name\t: AMD EPYC 7763 64-Core "
                                     "Processor\nflags\t: fpu\n"),
              "AMD EPYC 7763 64-Core Processor");
    EXPECT_EQ(cpu_model_from_cpuinfo("processor : 0\nModel : Raspberry Pi 4 Model B Rev 1.4\n"),
              "Raspberry Pi 4 Model B Rev 1.4");
    EXPECT_EQ(cpu_model_from_cpuinfo("processor : 0\n"), "");
}

TEST(EnergyEstimate, ChildUsageIsZeroUntilStartedAndExactAfterWait) {
    ChildUsage child;
    EXPECT_EQ(child().cpu_seconds, 0.0);
    EXPECT_EQ(child.wait(), -1);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        burn_cpu_seconds(0.03);
        _exit(7);
    }
    child.start(pid);
    const int status = child.wait();
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 7);
    EXPECT_GE(child().cpu_seconds, 0.03);
    EXPECT_GT(child().peak_rss_bytes, 0.0);
}

}  // namespace
}  // namespace greenmoe

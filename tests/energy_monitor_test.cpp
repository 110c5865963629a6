// EnergyMonitor windows over fake meters: overlap, errors, PUE per source, poller, reports.
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "greenmoe/energy/energy_monitor.h"
#include "test_support.h"

namespace greenmoe {
namespace {

// A meter whose running totals and clock the test sets.
struct FakeState {
    double now_s = 0.0;
    std::vector<double> joules;
    std::atomic<int> reads{0};
};

class FakeMeter final : public EnergyMeter {
  public:
    FakeMeter(std::shared_ptr<FakeState> state, std::vector<EnergySource> sources,
              std::string name = "fake")
        : state_(std::move(state)), sources_(std::move(sources)), name_(std::move(name)) {}
    std::string name() const override { return name_; }
    const std::vector<EnergySource>& sources() const override { return sources_; }
    void read(double, std::span<double> joules) override {
        ++state_->reads;
        for (size_t i = 0; i < joules.size(); ++i) joules[i] = state_->joules[i];
    }

  private:
    std::shared_ptr<FakeState> state_;
    std::vector<EnergySource> sources_;
    std::string name_;
};

CarbonSettings test_carbon() {
    CarbonSettings c;
    c.location = {"FR", "Europe", "France", "Any", 50.0};
    c.pue_measured = 1.0;
    c.pue_estimated = 1.5;
    c.pue_origin = "test";
    return c;
}

// A measured "cpu" meter (named rapl) and an estimated "ram" meter, on one fake clock.
struct Fixture {
    std::shared_ptr<FakeState> cpu = std::make_shared<FakeState>();
    std::shared_ptr<FakeState> ram = std::make_shared<FakeState>();
    std::unique_ptr<EnergyMonitor> monitor;
    explicit Fixture(double poll_s = 0.0) {
        cpu->joules = {0.0};
        ram->joules = {0.0};
        std::vector<std::unique_ptr<EnergyMeter>> meters;
        meters.push_back(std::make_unique<FakeMeter>(
            cpu, std::vector<EnergySource>{{"cpu", true, "fake cpu"}}, "rapl"));
        meters.push_back(std::make_unique<FakeMeter>(
            ram, std::vector<EnergySource>{{"ram", false, "fake ram"}}, "estimate"));
        monitor = std::make_unique<EnergyMonitor>(
            std::move(meters), test_carbon(),
            MonitorSettings{poll_s, [c = cpu] { return c->now_s; }});
    }
    void at(double t, double cpu_j, double ram_j = 0.0) {
        cpu->now_s = t;
        cpu->joules[0] = cpu_j;
        ram->joules[0] = ram_j;
    }
};

TEST(EnergyMonitor, WindowsOverlapAndNest) {
    Fixture f;
    auto& m = *f.monitor;
    f.at(0, 0);
    m.begin_window("A");
    f.at(1, 10);
    m.begin_window("B");
    f.at(2, 30);
    const auto a = m.end_window("A");
    EXPECT_DOUBLE_EQ(a.seconds, 2.0);
    EXPECT_DOUBLE_EQ(a.joules.at("cpu"), 30.0);
    EXPECT_FALSE(m.window_open("A"));
    EXPECT_TRUE(m.window_open("B"));
    f.at(3, 60);
    const auto peek = m.peek("B");
    EXPECT_DOUBLE_EQ(peek.seconds, 2.0);
    EXPECT_DOUBLE_EQ(peek.joules.at("cpu"), 50.0);
    m.begin_window("A");  // a name may be reused once closed
    f.at(4, 100);
    const auto b = m.end_window("B");
    EXPECT_DOUBLE_EQ(b.seconds, 3.0);
    EXPECT_DOUBLE_EQ(b.joules.at("cpu"), 90.0);
    EXPECT_DOUBLE_EQ(m.end_window("A").joules.at("cpu"), 40.0);
    EXPECT_DOUBLE_EQ(m.total().joules.at("cpu"), 100.0);
    EXPECT_DOUBLE_EQ(m.total().seconds, 4.0);
}

TEST(EnergyMonitor, WindowErrorsNameTheWindow) {
    Fixture f;
    f.monitor->begin_window("train");
    EXPECT_NE(testing::error_message([&] {
                  f.monitor->begin_window("train");
              }).find("'train' is already open"),
              std::string::npos);
    EXPECT_NE(testing::error_message([&] { f.monitor->end_window("eval"); }).find("'eval'"),
              std::string::npos);
    EXPECT_NE(testing::error_message([&] { f.monitor->peek("eval"); }).find("'eval' is not open"),
              std::string::npos);
}

TEST(EnergyMonitor, PueAppliesPerSourceAndCarbonFollowsKwh) {
    // cpu measured 3.6e6 J (PUE 1.0) + ram estimated 1.8e6 J (PUE 1.5) = 5.4e6 J hardware,
    // 6.3e6 J = 1.75 kWh with PUE; × 50 g/kWh = 87.5 g.
    Fixture f;
    f.monitor->begin_window("w");
    f.at(10, 3.6e6, 1.8e6);
    const auto m = f.monitor->end_window("w");
    EXPECT_DOUBLE_EQ(m.total_joules, 5.4e6);
    EXPECT_DOUBLE_EQ(m.total_joules_with_pue, 6.3e6);
    EXPECT_DOUBLE_EQ(m.pue, 6.3 / 5.4);
    EXPECT_DOUBLE_EQ(m.kwh, 1.75);
    EXPECT_DOUBLE_EQ(m.co2e_g, 87.5);
    EXPECT_FALSE(m.measured);
    EXPECT_TRUE(m.source_measured.at("cpu"));
    EXPECT_FALSE(m.source_measured.at("ram"));
    EXPECT_EQ(m.source_label, "mixed: cpu measured (rapl), ram estimated (Green Algorithms)");

    const auto row = f.monitor->emissions_row(m);
    EXPECT_DOUBLE_EQ(row.duration_s, 10.0);
    EXPECT_DOUBLE_EQ(row.cpu_energy_kwh, 1.0);
    // CodeCarbon's definition: each component with its PUE, adding up to energy_consumed.
    EXPECT_DOUBLE_EQ(row.ram_energy_kwh, 0.75);
    EXPECT_DOUBLE_EQ(row.gpu_energy_kwh, 0.0);
    EXPECT_DOUBLE_EQ(row.energy_consumed_kwh, 1.75);
    EXPECT_DOUBLE_EQ(row.cpu_energy_kwh + row.gpu_energy_kwh + row.ram_energy_kwh,
                     row.energy_consumed_kwh);
    EXPECT_DOUBLE_EQ(row.ram_power_w, 1.8e5);  // the hardware's power, no PUE
    EXPECT_DOUBLE_EQ(row.cpu_power_w, 3.6e5);
    EXPECT_DOUBLE_EQ(row.emissions_kg, 0.0875);
    EXPECT_DOUBLE_EQ(row.emissions_rate_kg_per_s, 0.00875);
    EXPECT_DOUBLE_EQ(row.pue, 6.3 / 5.4);
    EXPECT_EQ(row.country_name, "France");
    EXPECT_EQ(row.country_iso_code, "FR");
    EXPECT_EQ(row.region, "");
    EXPECT_EQ(row.tracking_mode, "machine");
    EXPECT_EQ(row.on_cloud, "N");
    EXPECT_EQ(row.codecarbon_version, "greenmoe-0.1.0");
    EXPECT_EQ(row.python_version, "");
    EXPECT_EQ(row.run_id.size(), 36u);
    EXPECT_EQ(row.run_id[14], '4');
}

TEST(EnergyMonitor, ReportsLabelSourcesAndCreditTheTables) {
    Fixture f;
    f.monitor->begin_window("w");
    f.at(2, 7200.0, 0.0);
    const auto m = f.monitor->end_window("w");
    const std::string line = f.monitor->summary_line(m);
    EXPECT_NE(line.find("2 Wh"), std::string::npos) << line;
    EXPECT_NE(line.find("Green Algorithms (Lannelongue, Grealey & Inouye, Adv. Sci. 2021)"),
              std::string::npos);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    const std::string report = f.monitor->report(m);
    EXPECT_NE(report.find("cpu"), std::string::npos);
    EXPECT_NE(report.find("measured"), std::string::npos);
    EXPECT_NE(report.find("estimated"), std::string::npos);
    EXPECT_NE(report.find("France [FR], 50 gCO2e/kWh"), std::string::npos) << report;
    EXPECT_NE(report.find("CC BY 4.0"), std::string::npos);
    EXPECT_EQ(f.monitor->progress_text(m), "2 Wh est. incl. PUE 1, 100 mgCO2e");
    EXPECT_NE(line.find("2 Wh incl. PUE 1 = "), std::string::npos) << line;
}

TEST(EnergyMonitor, PollerReadsInTheBackgroundAndStopsPromptly) {
    Fixture f(0.005);
    const int before = f.cpu->reads;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_GE(f.cpu->reads - before, 3);
    const auto t0 = std::chrono::steady_clock::now();
    f.monitor.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
}

TEST(EnergyMonitor, DisabledMonitorMeasuresNothing) {
    EnergyOptions o;
    o.enabled = false;
    o.location = "not-a-place";  // not even looked up
    EnergyMonitor m(o);
    EXPECT_FALSE(m.enabled());
    EXPECT_TRUE(m.sources().empty());
    m.begin_window("w");
    const auto w = m.end_window("w");
    EXPECT_EQ(w.total_joules, 0.0);
    EXPECT_EQ(w.co2e_g, 0.0);
    EXPECT_EQ(w.source_label, "not measured (--no-energy)");
    EXPECT_EQ(m.summary_line(w), "energy: not measured (--no-energy)");
}

TEST(EnergyMonitor, TwoMetersMayNotReportOneSource) {
    auto state = std::make_shared<FakeState>();
    state->joules = {0.0};
    std::vector<std::unique_ptr<EnergyMeter>> meters;
    meters.push_back(
        std::make_unique<FakeMeter>(state, std::vector<EnergySource>{{"cpu", true, ""}}));
    meters.push_back(
        std::make_unique<FakeMeter>(state, std::vector<EnergySource>{{"cpu", false, ""}}));
    EXPECT_NE(testing::error_message([&] {
                  EnergyMonitor m(std::move(meters), test_carbon(), MonitorSettings{0.0, {}});
              }).find("'cpu' is reported by two meters"),
              std::string::npos);
}

TEST(EnergyMonitor, RaplFromOptionsIsMeasuredAndExcludesPue) {
    // A fake powercap tree with one package and its dram zone: both sources measured, no
    // estimate meter, PUE 1.0 since none was given.
    testing::TempDir dir;
    const auto pkg = dir / "intel-rapl:0";
    const auto dram = pkg / "intel-rapl:0:2";
    std::filesystem::create_directories(dram);
    for (const auto& [zone, name] : {std::pair{pkg, "package-0"}, std::pair{dram, "dram"}}) {
        testing::write_text_file(zone / "name", std::string(name) + "\n");
        testing::write_text_file(zone / "energy_uj", "1000000\n");
        testing::write_text_file(zone / "max_energy_range_uj", "262143328850\n");
    }
    EnergyOptions o;
    o.powercap_root = dir.path().string();
    o.use_nvml = false;
    o.location = "FR";
    EnergyMonitor monitor(o);
    ASSERT_EQ(monitor.sources().size(), 2u);
    monitor.begin_window("run");
    testing::write_text_file(pkg / "energy_uj", "3001000000\n");  // +3000 J
    testing::write_text_file(dram / "energy_uj", "601000000\n");  // +600 J
    const auto m = monitor.end_window("run");
    EXPECT_DOUBLE_EQ(m.joules.at("cpu"), 3000.0);
    EXPECT_DOUBLE_EQ(m.joules.at("ram"), 600.0);
    EXPECT_TRUE(m.measured);
    EXPECT_DOUBLE_EQ(m.pue, 1.0);
    EXPECT_DOUBLE_EQ(m.kwh, 3600.0 / 3.6e6);
    EXPECT_DOUBLE_EQ(m.co2e_g, 0.001 * 51.28);
    EXPECT_EQ(m.source_label, "measured: cpu, ram (rapl)");
    EXPECT_EQ(monitor.emissions_row(m).tracking_mode, "machine");
    EXPECT_EQ(monitor.meter_status()[0].detail, "cpu: RAPL package-0; ram: RAPL package-0/dram");
}

TEST(EnergyMonitor, FormatsUnits) {
    EXPECT_EQ(format_energy(12.5), "12.5 J");
    EXPECT_EQ(format_energy(7200.0), "2 Wh");
    EXPECT_EQ(format_energy(7.2e6), "2 kWh");
    EXPECT_EQ(format_co2e(0.0123), "12.3 mgCO2e");
    EXPECT_EQ(format_co2e(4.5), "4.5 gCO2e");
    EXPECT_EQ(format_co2e(4500.0), "4.5 kgCO2e");
}

}  // namespace
}  // namespace greenmoe

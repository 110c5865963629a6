// RAPL through a fake powercap tree: zones, subzones, duplicates, wrap-around, unreadable counters.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "greenmoe/energy/powercap_meter.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_text_file;

void make_zone(const fs::path& dir, const std::string& name, uint64_t energy_uj,
               uint64_t max_uj = 262143328850ULL) {
    fs::create_directories(dir);
    write_text_file(dir / "name", name + "\n");
    write_text_file(dir / "energy_uj", std::to_string(energy_uj) + "\n");
    write_text_file(dir / "max_energy_range_uj", std::to_string(max_uj) + "\n");
}

void set_energy(const fs::path& dir, uint64_t energy_uj) {
    write_text_file(dir / "energy_uj", std::to_string(energy_uj) + "\n");
}

std::vector<double> read_all(EnergyMeter& meter) {
    std::vector<double> j(meter.sources().size());
    meter.read(0.0, j);
    return j;
}

// Two packages, package-0 with a core and a dram subzone, as under
// /sys/devices/virtual/powercap/intel-rapl.
struct FakeTree {
    TempDir dir;
    fs::path root = dir / "intel-rapl";
    fs::path pkg0 = root / "intel-rapl:0";
    fs::path core0 = pkg0 / "intel-rapl:0:0";
    fs::path dram0 = pkg0 / "intel-rapl:0:1";
    fs::path pkg1 = root / "intel-rapl:1";
    FakeTree() {
        make_zone(pkg0, "package-0", 1000);
        make_zone(core0, "core", 5000);
        make_zone(dram0, "dram", 70);
        make_zone(pkg1, "package-1", 2000);
    }
};

TEST(EnergyPowercap, SumsPackagesAndDramButNotCoreSubzones) {
    FakeTree t;
    auto r = open_powercap_meter({t.root});
    ASSERT_TRUE(r.meter) << r.unavailable_reason;
    const auto& sources = r.meter->sources();
    ASSERT_EQ(sources.size(), 2u);
    EXPECT_EQ(sources[0].key, "cpu");
    EXPECT_TRUE(sources[0].measured);
    EXPECT_EQ(sources[0].method, "RAPL package-0 + package-1");
    EXPECT_EQ(sources[1].key, "ram");
    EXPECT_EQ(sources[1].method, "RAPL package-0/dram");
    EXPECT_EQ(read_all(*r.meter), (std::vector<double>{0.0, 0.0}));

    set_energy(t.pkg0, 1500);   // +500
    set_energy(t.pkg1, 2300);   // +300
    set_energy(t.core0, 9000);  // inside package-0: must not add
    set_energy(t.dram0, 120);   // +50
    auto j = read_all(*r.meter);
    EXPECT_DOUBLE_EQ(j[0], 800e-6);
    EXPECT_DOUBLE_EQ(j[1], 50e-6);
    // Totals are cumulative: another +100 on package-1 adds to them.
    set_energy(t.pkg1, 2400);
    j = read_all(*r.meter);
    EXPECT_DOUBLE_EQ(j[0], 900e-6);
    EXPECT_DOUBLE_EQ(j[1], 50e-6);
}

TEST(EnergyPowercap, ZonesSeenThroughTwoRootsCountOnce) {
    // /sys/class/powercap holds symlinks to the zones (subzones too, flattened); both roots
    // are scanned by default.
    FakeTree t;
    const fs::path class_root = t.dir / "class";
    fs::create_directories(class_root);
    fs::create_directory_symlink(t.pkg0, class_root / "intel-rapl:0");
    fs::create_directory_symlink(t.core0, class_root / "intel-rapl:0:0");
    fs::create_directory_symlink(t.dram0, class_root / "intel-rapl:0:1");
    fs::create_directory_symlink(t.pkg1, class_root / "intel-rapl:1");
    auto r = open_powercap_meter({class_root, t.root});
    ASSERT_TRUE(r.meter) << r.unavailable_reason;
    read_all(*r.meter);
    set_energy(t.pkg0, 1100);
    set_energy(t.dram0, 80);
    const auto j = read_all(*r.meter);
    EXPECT_DOUBLE_EQ(j[0], 100e-6);
    EXPECT_DOUBLE_EQ(j[1], 10e-6);
}

TEST(EnergyPowercap, MmioCopyOfAPackageAndPsysAreNotAdded) {
    FakeTree t;
    const fs::path mmio = t.dir / "intel-rapl-mmio" / "intel-rapl-mmio:0";
    make_zone(mmio, "package-0", 7);
    make_zone(t.root / "intel-rapl:2", "psys", 10);
    auto r = open_powercap_meter({t.dir.path()});
    ASSERT_TRUE(r.meter) << r.unavailable_reason;
    EXPECT_EQ(r.meter->sources()[0].method, "RAPL package-0 + package-1");
    read_all(*r.meter);
    set_energy(mmio, 1007);
    set_energy(t.root / "intel-rapl:2", 5010);
    set_energy(t.pkg1, 2001);
    EXPECT_DOUBLE_EQ(read_all(*r.meter)[0], 1e-6);
}

TEST(EnergyPowercap, TopLevelDramZonesOfTwoSocketsBothCount) {
    TempDir dir;
    make_zone(dir / "intel-rapl:0", "package-0", 0);
    make_zone(dir / "intel-rapl:1", "dram", 0);
    make_zone(dir / "intel-rapl:2", "dram", 0);
    auto r = open_powercap_meter({dir.path()});
    ASSERT_TRUE(r.meter) << r.unavailable_reason;
    EXPECT_EQ(r.meter->sources()[1].method, "RAPL dram (intel-rapl:1) + dram (intel-rapl:2)");
    read_all(*r.meter);
    set_energy(dir / "intel-rapl:1", 5);
    set_energy(dir / "intel-rapl:2", 7);
    EXPECT_DOUBLE_EQ(read_all(*r.meter)[1], 12e-6);
}

TEST(EnergyPowercap, CounterWrapsAtMaxEnergyRange) {
    EXPECT_EQ(counter_delta_uj(900, 100, 1000), 200u);
    EXPECT_EQ(counter_delta_uj(100, 900, 1000), 800u);
    EXPECT_EQ(counter_delta_uj(5000, 100, 1000), 100u);  // a value above the range: no wrap

    TempDir dir;
    const fs::path pkg = dir / "intel-rapl:0";
    make_zone(pkg, "package-0", 900, 1000);
    auto r = open_powercap_meter({dir.path()});
    ASSERT_TRUE(r.meter) << r.unavailable_reason;
    read_all(*r.meter);
    set_energy(pkg, 100);  // wrapped: 900 → 1000 → 0 → 100
    EXPECT_DOUBLE_EQ(read_all(*r.meter)[0], 200e-6);
    set_energy(pkg, 400);
    EXPECT_DOUBLE_EQ(read_all(*r.meter)[0], 500e-6);
    // A 1000 µJ range wraps in 1 µs at 1 kW: the meter asks for reads at least that often.
    EXPECT_LE(r.meter->max_read_interval_s(), 1e-6);
}

TEST(EnergyPowercap, MissingDramZoneLeavesCpuOnly) {
    TempDir dir;
    make_zone(dir / "intel-rapl:0", "package-0", 1);
    make_zone(dir / "intel-rapl:0" / "intel-rapl:0:0", "core", 1);
    auto r = open_powercap_meter({dir.path()});
    ASSERT_TRUE(r.meter) << r.unavailable_reason;
    ASSERT_EQ(r.meter->sources().size(), 1u);
    EXPECT_EQ(r.meter->sources()[0].key, "cpu");
    ASSERT_EQ(r.notes.size(), 1u);
    EXPECT_NE(r.notes[0].find("no RAPL dram zone"), std::string::npos);
}

TEST(EnergyPowercap, UnreadableCounterMakesTheMeterUnavailable) {
    // A directory where energy_uj should be: read() fails as for a root-only file.
    TempDir dir;
    const fs::path pkg = dir / "intel-rapl:0";
    make_zone(pkg, "package-0", 1);
    fs::remove(pkg / "energy_uj");
    fs::create_directory(pkg / "energy_uj");
    auto r = open_powercap_meter({dir.path()});
    EXPECT_FALSE(r.meter);
    EXPECT_NE(r.unavailable_reason.find("energy_uj"), std::string::npos) << r.unavailable_reason;
    EXPECT_NE(r.unavailable_reason.find("root"), std::string::npos) << r.unavailable_reason;
}

TEST(EnergyPowercap, PermissionDeniedMakesTheMeterUnavailable) {
    if (geteuid() == 0) GTEST_SKIP() << "root reads mode-000 files";
    TempDir dir;
    const fs::path pkg = dir / "intel-rapl:0";
    make_zone(pkg, "package-0", 1);
    ASSERT_EQ(chmod((pkg / "energy_uj").c_str(), 0), 0);
    auto r = open_powercap_meter({dir.path()});
    EXPECT_FALSE(r.meter);
    EXPECT_NE(r.unavailable_reason.find("Permission denied"), std::string::npos)
        << r.unavailable_reason;
}

TEST(EnergyPowercap, UnreadableDramIsDroppedWithANote) {
    FakeTree t;
    fs::remove(t.dram0 / "energy_uj");
    fs::create_directory(t.dram0 / "energy_uj");
    auto r = open_powercap_meter({t.root});
    ASSERT_TRUE(r.meter) << r.unavailable_reason;
    EXPECT_EQ(r.meter->sources().size(), 1u);
    ASSERT_EQ(r.notes.size(), 1u);
    EXPECT_NE(r.notes[0].find("dram zone unreadable"), std::string::npos);
}

TEST(EnergyPowercap, NoZonesOrNoRootIsUnavailable) {
    TempDir dir;
    auto r = open_powercap_meter({dir.path(), dir / "missing"});
    EXPECT_FALSE(r.meter);
    EXPECT_NE(r.unavailable_reason.find("no RAPL package zone"), std::string::npos);
}

}  // namespace
}  // namespace greenmoe

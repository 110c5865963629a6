// `greenmoe energy -- cmd`: exit codes pass through, the summary labels and credits, --csv.
#include "greenmoe/energy/csv_table.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::greenmoe_binary;
using testing::run_command;

// Deterministic meters whatever the machine: no powercap zones, no NVML.
std::string energy_command(const testing::TempDir& dir, const std::string& rest) {
    return greenmoe_binary().string() + " energy --no-nvml --powercap-root " +
           (dir / "no-powercap").string() + " " + rest;
}

TEST(EnergyCli, TrueExitsZeroWithAnEstimatedSummary) {
    testing::TempDir dir;
    const auto r = run_command(energy_command(dir, "-- true"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("`true` exited with status 0"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("estimated: cpu, ram (Green Algorithms)"), std::string::npos);
    EXPECT_NE(r.output.find("World [WORLD], 475 gCO2e/kWh"), std::string::npos);
    EXPECT_NE(r.output.find("tree-months"), std::string::npos);
    EXPECT_NE(r.output.find("rapl     unavailable: no RAPL package zone"), std::string::npos);
    EXPECT_NE(r.output.find("Green Algorithms (Lannelongue, Grealey & Inouye, Adv. Sci. 2021)"),
              std::string::npos);
}

TEST(EnergyCli, ExitCodeOfTheCommandPassesThrough) {
    testing::TempDir dir;
    const auto r = run_command(energy_command(dir, "-- sh -c 'echo out-line; exit 3'"));
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_NE(r.output.find("out-line"), std::string::npos);
    EXPECT_NE(r.output.find("exited with status 3"), std::string::npos);
    const auto killed = run_command(energy_command(dir, "-- sh -c 'kill -TERM $$'"));
    EXPECT_EQ(killed.exit_code, 128 + 15) << killed.output;
    const auto missing = run_command(energy_command(dir, "-- /nonexistent/greenmoe-cmd"));
    EXPECT_EQ(missing.exit_code, 127) << missing.output;
    EXPECT_NE(missing.output.find("cannot run '/nonexistent/greenmoe-cmd'"), std::string::npos);
}

TEST(EnergyCli, UnknownLocationIsAnErrorBeforeRunning) {
    testing::TempDir dir;
    const auto r =
        run_command(energy_command(dir, "--location Atlantis -- sh -c 'echo should-not-run'"));
    EXPECT_EQ(r.exit_code, 2) << r.output;  // a bad command-line value
    EXPECT_NE(r.output.find("--location 'Atlantis'"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("should-not-run"), std::string::npos);
}

TEST(EnergyCli, CsvGetsOneRowPerRun) {
    testing::TempDir dir;
    const auto csv = dir / "emissions.csv";
    for (int i = 0; i < 2; ++i) {
        const auto r =
            run_command(energy_command(dir, "--location FR --csv " + csv.string() + " -- true"));
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    const auto records = parse_csv(testing::read_text_file(csv), "emissions.csv");
    ASSERT_EQ(records.size(), 3u);
    EXPECT_EQ(records[0][0], "timestamp");
    EXPECT_EQ(records[1][15], "France");      // country_name (CodeCarbon 3's columns)
    EXPECT_EQ(records[1][30], "process");     // tracking_mode
    EXPECT_NE(records[1][2], records[2][2]);  // a run id per run
}

TEST(EnergyCli, HelpExplainsMeasuredVersusEstimated) {
    const auto r = run_command(greenmoe_binary().string() + " energy --help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.output.find("MEASURED energy comes from hardware counters"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("ESTIMATED energy"), std::string::npos);
    EXPECT_NE(r.output.find("--location"), std::string::npos);
    EXPECT_NE(r.output.find("--no-energy"), std::string::npos);
}

}  // namespace
}  // namespace greenmoe

// emissions.csv: CodeCarbon 3's exact header, quoting, appending across resumed segments, and
// upgrading a file in the 32-column layout greenmoe wrote before.
#include "greenmoe/energy/csv_table.h"
#include "greenmoe/energy/emissions_csv.h"
#include "test_support.h"

namespace greenmoe {
namespace {

// CodeCarbon 3.3's header (EmissionsData's fields), as in the emissions.csv files it writes.
constexpr const char* kCodeCarbonHeader =
    "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,"
    "gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed,"
    "country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,"
    "codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,"
    "ram_total_size,tracking_mode,cpu_utilization_percent,gpu_utilization_percent,"
    "ram_utilization_percent,ram_used_gb,on_cloud,pue,wue\n";

// The 32-column header greenmoe wrote before (CodeCarbon 2.8's).
constexpr const char* kOldHeader =
    "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,"
    "gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,"
    "country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version,"
    "cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,"
    "on_cloud,pue\n";

EmissionsRow sample_row(double duration) {
    EmissionsRow r;
    r.timestamp = "2025-03-01T12:00:00";
    r.project_name = "greenmoe";
    r.run_id = "0e259e37-b429-404b-a769-261b4f67a5c7";
    r.duration_s = duration;
    r.emissions_kg = 1.5e-05;
    r.cpu_energy_kwh = 0.25;
    r.energy_consumed_kwh = 0.25;
    r.country_name = "France";
    r.country_iso_code = "FR";
    r.os = "Linux-6.1.0-x86_64-with-glibc2.36";
    r.codecarbon_version = "greenmoe-0.1.0";
    r.cpu_count = 2;
    r.cpu_model = "Intel(R) Xeon(R) CPU E5-2670, \"v2\"";
    r.ram_total_size_gb = 7.5;
    r.pue = 1.0;
    return r;
}

TEST(EnergyEmissionsCsv, HeaderIsCodeCarbons) {
    EXPECT_EQ(EmissionsCsv::header_line(), kCodeCarbonHeader);
    EXPECT_EQ(sample_row(1).fields().size(), kEmissionsCsvColumns.size());
}

TEST(EnergyEmissionsCsv, NumbersAsPythonWritesThem) {
    EXPECT_EQ(python_float(1.0), "1.0");
    EXPECT_EQ(python_float(0.0), "0.0");
    EXPECT_EQ(python_float(-3.0), "-3.0");
    EXPECT_EQ(python_float(554.2081344127655), "554.2081344127655");
    EXPECT_EQ(python_float(1.5e-05), "1.5e-05");
    EXPECT_EQ(python_float(0.1), "0.1");
}

TEST(EnergyEmissionsCsv, AppendsAcrossResumesKeepingEarlierRowsByteIdentical) {
    testing::TempDir dir;
    const auto path = dir / "emissions.csv";
    EmissionsCsv csv(path);
    csv.append(sample_row(10.0));
    const std::string first = testing::read_text_file(path);
    EXPECT_TRUE(first.starts_with(kCodeCarbonHeader));
    const auto records = parse_csv(first, "emissions.csv");
    ASSERT_EQ(records.size(), 2u);
    ASSERT_EQ(records[1].size(), 38u);
    EXPECT_EQ(records[1][4], "10.0");
    EXPECT_EQ(records[1][14], "0.0");                                   // water_consumed
    EXPECT_EQ(records[1][24], "Intel(R) Xeon(R) CPU E5-2670, \"v2\"");  // quoted, round-trips
    EXPECT_EQ(records[1][25], "");                                      // no GPU: empty count
    EXPECT_EQ(records[1][31], "");                                      // utilization: not measured
    EXPECT_EQ(records[1][36], "1.0");
    EXPECT_EQ(records[1][37], "0.0");

    EmissionsCsv(path).append(sample_row(20.0));  // a resumed run, a new object
    const std::string second = testing::read_text_file(path);
    ASSERT_TRUE(second.starts_with(first));
    const auto records2 = parse_csv(second, "emissions.csv");
    ASSERT_EQ(records2.size(), 3u);
    EXPECT_EQ(records2[2][4], "20.0");
    const EmissionsTotals totals = EmissionsCsv(path).totals();
    EXPECT_EQ(totals.segments, 2);
    EXPECT_DOUBLE_EQ(totals.duration_s, 30.0);
    EXPECT_DOUBLE_EQ(totals.energy_consumed_kwh, 0.5);
    EXPECT_DOUBLE_EQ(totals.emissions_kg, 3e-05);
    EXPECT_EQ(EmissionsCsv(dir / "none.csv").totals().segments, 0);
    // Nothing left behind but the file itself.
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(EnergyEmissionsCsv, AnOldFileIsRewrittenInCodeCarbon3sLayout) {
    // A row greenmoe wrote before: hardware energy in the components (0.2 + 0.1 kWh), PUE
    // 1.5 in energy_consumed only (0.45 kWh).
    testing::TempDir dir;
    const auto path = dir / "emissions.csv";
    const std::string old_row =
        "2025-03-01T12:00:00,greenmoe,run-1,exp-1,10.0,2.25e-05,2.25e-06,72.0,0.0,36.0,0.2,0.0,"
        "0.1,0.45,France,FR,,,,Linux,,greenmoe-0.1.0,2,\"Xeon, v2\",,,,,7.5,process,N,1.5\n";
    testing::write_text_file(path, std::string(kOldHeader) + old_row);
    EmissionsCsv(path).append(sample_row(20.0));
    const std::string now = testing::read_text_file(path);
    EXPECT_TRUE(now.starts_with(kCodeCarbonHeader)) << now;
    const CsvTable table(now, "emissions.csv", 0);
    ASSERT_EQ(table.num_rows(), 2u);
    for (size_t r = 0; r < 2; ++r) {
        const double sum = table.number(r, table.column("cpu_energy")) +
                           table.number(r, table.column("gpu_energy")) +
                           table.number(r, table.column("ram_energy"));
        EXPECT_NEAR(sum, table.number(r, table.column("energy_consumed")), 1e-12) << "row " << r;
    }
    EXPECT_DOUBLE_EQ(table.number(0, table.column("cpu_energy")), 0.2 * 1.5);
    EXPECT_EQ(table.text(0, table.column("cpu_model")), "Xeon, v2");
    EXPECT_EQ(table.text(0, table.column("run_id")), "run-1");
    EXPECT_EQ(table.text(0, table.column("pue")), "1.5");
    EXPECT_EQ(table.text(0, table.column("water_consumed")), "0.0");
    EXPECT_EQ(table.text(0, table.column("ram_used_gb")), "");
    const EmissionsTotals totals = EmissionsCsv(path).totals();
    EXPECT_EQ(totals.segments, 2);
    EXPECT_DOUBLE_EQ(totals.energy_consumed_kwh, 0.45 + 0.25);
}

TEST(EnergyEmissionsCsv, RefusesAFileWithAnotherHeader) {
    testing::TempDir dir;
    const auto path = dir / "emissions.csv";
    testing::write_text_file(path, "timestamp,project_name,run_id,duration\nx,y,z,1\n");
    const std::string message =
        testing::error_message([&] { EmissionsCsv(path).append(sample_row(1.0)); });
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("header"), std::string::npos) << message;
    EXPECT_EQ(testing::read_text_file(path), "timestamp,project_name,run_id,duration\nx,y,z,1\n");
}

TEST(EnergyEmissionsCsv, AFileWithoutFinalNewlineGetsOneBeforeTheNewRow) {
    testing::TempDir dir;
    const auto path = dir / "emissions.csv";
    const std::string old = std::string(kCodeCarbonHeader) + EmissionsCsv::row_line(sample_row(1));
    testing::write_text_file(path, old.substr(0, old.size() - 1));
    EmissionsCsv(path).append(sample_row(2));
    const std::string now = testing::read_text_file(path);
    EXPECT_TRUE(now.starts_with(old));
    EXPECT_EQ(parse_csv(now, "e").size(), 3u);
}

TEST(EnergyEmissionsCsv, AnEmptyFileIsStartedAfresh) {
    testing::TempDir dir;
    const auto path = dir / "emissions.csv";
    testing::write_text_file(path, "");
    EmissionsCsv(path).append(sample_row(3));
    EXPECT_EQ(testing::read_text_file(path),
              std::string(kCodeCarbonHeader) + EmissionsCsv::row_line(sample_row(3)));
}

}  // namespace
}  // namespace greenmoe

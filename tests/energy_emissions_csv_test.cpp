// emissions.csv: CodeCarbon's exact header, quoting, and appending across resumed segments.
#include "greenmoe/energy/csv_table.h"
#include "greenmoe/energy/emissions_csv.h"
#include "test_support.h"

namespace greenmoe {
namespace {

// CodeCarbon 2.8's header, as in the emissions.csv files it writes.
constexpr const char* kCodeCarbonHeader =
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
    ASSERT_EQ(records[1].size(), 32u);
    EXPECT_EQ(records[1][4], "10.0");
    EXPECT_EQ(records[1][23], "Intel(R) Xeon(R) CPU E5-2670, \"v2\"");  // quoted, round-trips
    EXPECT_EQ(records[1][24], "");                                      // no GPU: empty count
    EXPECT_EQ(records[1][31], "1.0");

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

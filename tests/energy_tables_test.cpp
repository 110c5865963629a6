// Green Algorithms tables: embedded copies, CSV parsing, lookups of CPUs, locations and PUE.
#include "greenmoe/energy/csv_table.h"
#include "greenmoe/energy/green_algorithms_data.h"
#include "greenmoe/energy/green_algorithms_tables.h"
#include "test_support.h"

namespace greenmoe {
namespace {

TEST(EnergyTables, EmbeddedCopiesEqualTheRepositoryAndSharedFiles) {
    const auto files = embedded_green_algorithms_files();
    ASSERT_EQ(files.size(), 5u);
    for (std::string_view name : files) {
        const std::string embedded(embedded_green_algorithms_csv(name));
        const auto repo = std::filesystem::path(GREENMOE_SOURCE_DIR) / "data" / "green-algorithms";
        EXPECT_EQ(embedded, testing::read_text_file(repo / std::string(name))) << name;
        EXPECT_EQ(embedded, testing::read_text_file(testing::shared_data() / "green-algorithms" /
                                                    std::string(name)))
            << name;
    }
    EXPECT_TRUE(embedded_green_algorithms_csv("TDP_gpu.csv").empty());
}

TEST(EnergyTables, ParseCsvHandlesQuotesCrlfAndNoFinalNewline) {
    const auto r = parse_csv("a,\"b,c\",\"say \"\"hi\"\"\"\r\nx,,\"multi\nline\"\n\nlast,1", "t");
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0], (std::vector<std::string>{"a", "b,c", "say \"hi\""}));
    EXPECT_EQ(r[1], (std::vector<std::string>{"x", "", "multi\nline"}));
    EXPECT_EQ(r[2], (std::vector<std::string>{"last", "1"}));
    EXPECT_NE(
        testing::error_message([] { parse_csv("a,\"open", "broken.csv"); }).find("broken.csv"),
        std::string::npos);
    EXPECT_EQ(csv_field("plain"), "plain");
    EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
    EXPECT_EQ(csv_field("q\"q"), "\"q\"\"q\"");
}

TEST(EnergyTables, ReferenceValuesAndDefaults) {
    const auto t = GreenAlgorithmsTables::builtin();
    EXPECT_EQ(t.world().location, "WORLD");
    EXPECT_DOUBLE_EQ(t.world().g_per_kwh, 475.0);
    EXPECT_DOUBLE_EQ(t.default_pue(), 1.56);
    EXPECT_DOUBLE_EQ(t.default_cpu().tdp_per_core_w, 12.0);
    EXPECT_DOUBLE_EQ(t.reference("memoryPower"), 0.3725);
    EXPECT_DOUBLE_EQ(t.reference("tree_month"), 917.0);
    EXPECT_DOUBLE_EQ(t.reference("passengerCar_EU_perkm"), 175.0);
    EXPECT_NE(testing::error_message([&] { t.reference("nope"); }).find("referenceValues.csv"),
              std::string::npos);
    ASSERT_NE(t.find_location("fr"), nullptr);
    EXPECT_DOUBLE_EQ(t.find_location("FR")->g_per_kwh, 51.28);
    ASSERT_NE(t.find_location("US-CA"), nullptr);
    EXPECT_EQ(t.find_location("US-CA")->country, "United States of America");
    EXPECT_EQ(t.find_location("XX"), nullptr);
    ASSERT_NE(t.find_provider_pue("GCP"), nullptr);
    EXPECT_DOUBLE_EQ(*t.find_provider_pue("gcp"), 1.12);
    const Datacenter* dc = t.find_datacenter("gcp", "europe-west1");
    ASSERT_NE(dc, nullptr);
    EXPECT_EQ(dc->location, "BE");
    EXPECT_DOUBLE_EQ(dc->pue, 1.08);
}

TEST(EnergyTables, CpuModelsFromCpuinfoFindTheirRow) {
    const auto t = GreenAlgorithmsTables::builtin();
    const auto tdp = [&](const char* model) {
        const CpuTdp* row = t.find_cpu(model);
        return row ? row->model + " " + std::to_string(row->tdp_per_core_w) : std::string("none");
    };
    EXPECT_EQ(tdp("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz"), "Xeon Gold 6148 7.500000");
    EXPECT_EQ(tdp("AMD EPYC 7763 64-Core Processor"), "AMD EPYC 7763 4.400000");
    EXPECT_EQ(tdp("Intel(R) Core(TM) i9-10900KF CPU @ 3.70GHz"), "Core i9-10900KF 10.500000");
    EXPECT_EQ(tdp("Intel(R) Core(TM) i9-10900K CPU @ 3.70GHz"), "Core i9-10900K 12.500000");
    EXPECT_EQ(tdp("AMD Ryzen 9 3900X 12-Core Processor"), "Ryzen 9 3900X 10.400000");
    EXPECT_EQ(tdp("Intel(R) Xeon(R) CPU L5640 @ 2.27GHz"), "Xeon L5640 10.000000");
    EXPECT_EQ(tdp("AMD EPYC"), "none");  // this machine's virtualised name: the 'Any' row
    EXPECT_EQ(tdp(""), "none");
}

TEST(EnergyTables, BadNumbersAndMissingRowsNameTheTable) {
    std::map<std::string, std::string> texts;
    for (std::string_view name : embedded_green_algorithms_files()) {
        texts[std::string(name)] = std::string(embedded_green_algorithms_csv(name));
    }
    auto broken = texts;
    broken["TDP_cpu.csv"] = "units\nmodel,TDP,n_cores,TDP_per_core\nAny,,,twelve\n";
    EXPECT_NE(testing::error_message([&] {
                  GreenAlgorithmsTables::from_texts(broken);
              }).find("TDP_cpu.csv: row 1 column 'TDP_per_core'"),
              std::string::npos);
    broken = texts;
    broken["CI_aggregated.csv"] =
        "units\nlocation,continentName,countryName,regionName,"
        "carbonIntensity\nFR,Europe,France,Any,51\n";
    EXPECT_NE(testing::error_message([&] {
                  GreenAlgorithmsTables::from_texts(broken);
              }).find("no 'WORLD' row"),
              std::string::npos);
}

}  // namespace
}  // namespace greenmoe

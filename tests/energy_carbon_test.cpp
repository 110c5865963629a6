// From energy to carbon: location, PUE by number, provider or region, equivalences.
#include <CLI/CLI.hpp>

#include "greenmoe/energy/carbon.h"
#include "greenmoe/energy/energy_options.h"
#include "test_support.h"

namespace greenmoe {
namespace {

CarbonSettings resolve(const EnergyOptions& o) {
    return resolve_carbon(o, GreenAlgorithmsTables::builtin());
}

TEST(EnergyCarbon, DefaultsAreWorldAndPueOnlyOnEstimates) {
    const auto c = resolve({});
    EXPECT_EQ(c.location.location, "WORLD");
    EXPECT_DOUBLE_EQ(c.location.g_per_kwh, 475.0);
    EXPECT_DOUBLE_EQ(c.pue_measured, 1.0);
    EXPECT_DOUBLE_EQ(c.pue_estimated, 1.56);
    EXPECT_EQ(location_label(c.location), "World");
}

TEST(EnergyCarbon, LocationByCodeOrCountryName) {
    EnergyOptions o;
    o.location = "fr";
    EXPECT_DOUBLE_EQ(resolve(o).location.g_per_kwh, 51.28);
    o.location = "France";
    EXPECT_EQ(resolve(o).location.location, "FR");
    o.location = "US-CA";
    EXPECT_EQ(location_label(resolve(o).location), "United States of America (California)");
}

TEST(EnergyCarbon, UnknownLocationIsAnError) {
    EnergyOptions o;
    o.location = "Atlantis";
    const std::string message = testing::error_message([&] { resolve(o); });
    EXPECT_NE(message.find("--location 'Atlantis'"), std::string::npos) << message;
    EXPECT_NE(message.find("CI_aggregated.csv"), std::string::npos) << message;
    EXPECT_NE(message.find(" FR"), std::string::npos) << message;  // lists the codes
}

TEST(EnergyCarbon, GivenPueAppliesToEverything) {
    EnergyOptions o;
    o.pue = 1.2;
    const auto c = resolve(o);
    EXPECT_DOUBLE_EQ(c.pue_measured, 1.2);
    EXPECT_DOUBLE_EQ(c.pue_estimated, 1.2);
    o.pue = 0.9;
    EXPECT_NE(testing::error_message([&] { resolve(o); }).find("--pue must be ≥ 1.0"),
              std::string::npos);
}

TEST(EnergyCarbon, ProviderAndRegionSetPueAndLocation) {
    EnergyOptions o;
    o.cloud_provider = "aws";
    auto c = resolve(o);
    EXPECT_DOUBLE_EQ(c.pue_measured, 1.2);
    EXPECT_DOUBLE_EQ(c.pue_estimated, 1.2);
    EXPECT_EQ(c.location.location, "WORLD");

    o.cloud_provider = "gcp";
    o.cloud_region = "europe-west1";  // Belgium, PUE 1.08 listed
    c = resolve(o);
    EXPECT_EQ(c.location.location, "BE");
    EXPECT_DOUBLE_EQ(c.pue_estimated, 1.08);
    o.cloud_region = "europe-west2";  // London, no PUE listed: gcp's default
    c = resolve(o);
    EXPECT_EQ(c.location.location, "GB");
    EXPECT_DOUBLE_EQ(c.pue_estimated, 1.12);
    o.location = "FR";  // an explicit location wins over the region's
    EXPECT_EQ(resolve(o).location.location, "FR");

    o = {};
    o.cloud_provider = "nimbus";
    EXPECT_NE(testing::error_message([&] { resolve(o); }).find("--cloud-provider 'nimbus'"),
              std::string::npos);
    o.cloud_provider = "gcp";
    o.cloud_region = "mars-north1";
    EXPECT_NE(testing::error_message([&] { resolve(o); }).find("--cloud-region 'mars-north1'"),
              std::string::npos);
    o.cloud_provider = "";
    EXPECT_NE(testing::error_message([&] { resolve(o); }).find("needs --cloud-provider"),
              std::string::npos);
}

TEST(EnergyCarbon, Equivalences) {
    const auto c = resolve({});
    const auto e = equivalences(917.0 * 175.0, c);
    EXPECT_DOUBLE_EQ(e.tree_months, 175.0);
    EXPECT_DOUBLE_EQ(e.car_km, 917.0);
    EXPECT_DOUBLE_EQ(equivalences(50000.0, c).flight_share, 1.0);
}

TEST(EnergyCarbon, CommandLineOptions) {
    CLI::App app;
    EnergyOptions o;
    add_energy_options(&app, o);
    app.parse("--location FR --pue 1.5 --cores 2 --no-energy --no-nvml", false);
    EXPECT_EQ(o.location, "FR");
    EXPECT_DOUBLE_EQ(o.pue, 1.5);
    EXPECT_EQ(o.cores, 2);
    EXPECT_FALSE(o.enabled);
    EXPECT_FALSE(o.use_nvml);
    EXPECT_TRUE(o.use_rapl);

    CLI::App bad;
    EnergyOptions o2;
    add_energy_options(&bad, o2);
    EXPECT_THROW(bad.parse("--pue 0.5", false), CLI::ValidationError);
}

}  // namespace
}  // namespace greenmoe

// Carbon settings and equivalences (see carbon.h).
#include "greenmoe/energy/carbon.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

const CarbonIntensity& find_location_or_fail(const GreenAlgorithmsTables& tables,
                                             const std::string& wanted) {
    if (const auto* row = tables.find_location(wanted)) return *row;
    for (const auto& row : tables.locations()) {
        if (row.region == "Any" && iequals(row.country, wanted)) return row;
    }
    std::string codes;
    for (const auto& row : tables.locations()) {
        if (row.region == "Any" || row.location == "WORLD") codes += " " + row.location;
    }
    usage_fail(
        "--location '{}' is not in the Green Algorithms carbon-intensity table "
        "(CI_aggregated.csv); give a location code such as FR, US-CA or CA-QC, or one of the "
        "countries:{}",
        wanted, codes);
}

}  // namespace

std::string location_label(const CarbonIntensity& l) {
    if (l.location == "WORLD") return "World";
    if (l.region.empty() || l.region == "Any") return l.country;
    return fmt::format("{} ({})", l.country, l.region);
}

CarbonSettings resolve_carbon(const EnergyOptions& o, const GreenAlgorithmsTables& tables) {
    CarbonSettings c;
    c.cloud_provider = o.cloud_provider;
    c.cloud_region = o.cloud_region;
    usage_check(o.cloud_region.empty() || !o.cloud_provider.empty(),
                "--cloud-region '{}' needs --cloud-provider (gcp, aws, azure…)", o.cloud_region);
    const double* provider_pue = nullptr;
    const Datacenter* datacenter = nullptr;
    if (!o.cloud_provider.empty()) {
        provider_pue = tables.find_provider_pue(o.cloud_provider);
        if (!provider_pue) {
            std::string known;
            for (const auto& p : tables.providers()) known += " " + p;
            usage_fail(
                "--cloud-provider '{}' is not in Green Algorithms' defaults_PUE.csv; known:{}",
                o.cloud_provider, known);
        }
        if (!o.cloud_region.empty()) {
            datacenter = tables.find_datacenter(o.cloud_provider, o.cloud_region);
            usage_check(datacenter != nullptr,
                        "--cloud-region '{}' of provider '{}' is not in Green Algorithms' "
                        "cloudProviders_datacenters.csv",
                        o.cloud_region, o.cloud_provider);
        }
    }

    if (!o.location.empty()) {
        c.location = find_location_or_fail(tables, o.location);
    } else if (datacenter) {
        c.location = find_location_or_fail(tables, datacenter->location);
    } else {
        c.location = tables.world();
    }

    if (o.pue != 0.0) {
        usage_check(o.pue >= 1.0,
                    "--pue must be ≥ 1.0 (a data centre cannot use less than its IT "
                    "equipment), got {}",
                    o.pue);
        c.pue_measured = c.pue_estimated = o.pue;
        c.pue_origin = "--pue";
    } else if (datacenter && datacenter->pue > 0.0) {
        c.pue_measured = c.pue_estimated = datacenter->pue;
        c.pue_origin = fmt::format("{} {} (cloudProviders_datacenters.csv)", datacenter->provider,
                                   datacenter->name);
    } else if (provider_pue) {
        c.pue_measured = c.pue_estimated = *provider_pue;
        c.pue_origin = fmt::format("{} default (defaults_PUE.csv)", o.cloud_provider);
    } else {
        c.pue_measured = 1.0;
        c.pue_estimated = tables.default_pue();
        c.pue_origin = fmt::format(
            "none given: 1.0 for measured energy, {:g} (defaults_PUE.csv 'Unknown') for "
            "estimates",
            c.pue_estimated);
    }

    c.tree_month_g = tables.reference("tree_month");
    c.car_km_g = tables.reference("passengerCar_EU_perkm");
    c.flight_paris_london_g = tables.reference("flight_PAR-LON");
    return c;
}

Equivalences equivalences(double co2e_g, const CarbonSettings& c) {
    return {co2e_g / c.tree_month_g, co2e_g / c.car_km_g, co2e_g / c.flight_paris_london_g};
}

}  // namespace greenmoe

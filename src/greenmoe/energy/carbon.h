// From energy to carbon: location and its intensity, PUE, and everyday equivalences.
#pragma once

#include <string>

#include "greenmoe/energy/energy_options.h"
#include "greenmoe/energy/green_algorithms_tables.h"

namespace greenmoe {

struct CarbonSettings {
    CarbonIntensity location;  // the CI_aggregated.csv row (WORLD when none was given)
    // PUE multiplying measured and estimated energy (they differ only when no PUE, cloud
    // provider or region was given: see EnergyOptions::pue).
    double pue_measured = 1.0;
    double pue_estimated = 1.0;
    std::string pue_origin;  // for reports
    std::string cloud_provider, cloud_region;
    // referenceValues.csv: gCO2e of one tree-month of absorption, one km by (EU) passenger
    // car, one Paris–London flight.
    double tree_month_g = 917.0;
    double car_km_g = 175.0;
    double flight_paris_london_g = 50000.0;
};

// Resolves --location, --pue, --cloud-provider and --cloud-region against the tables.
// Throws Error for a location, provider or region not in the tables (a typo would
// otherwise silently give another country's carbon), a region without a provider, or a
// PUE below 1.
CarbonSettings resolve_carbon(const EnergyOptions& options, const GreenAlgorithmsTables& tables);

// "France", "United States (California)", "World".
std::string location_label(const CarbonIntensity& location);

struct Equivalences {
    double tree_months = 0.0;   // months a tree needs to absorb it
    double car_km = 0.0;        // km driven in an average EU passenger car
    double flight_share = 0.0;  // fraction of one Paris–London flight
};
Equivalences equivalences(double co2e_g, const CarbonSettings& carbon);

}  // namespace greenmoe

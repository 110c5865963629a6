// The Green Algorithms v3.0 tables greenmoe uses: CPU TDP, carbon intensity, PUE, reference values.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace greenmoe {

// Printed by every report that uses these tables (their licence, CC BY 4.0, asks for it).
inline constexpr std::string_view kGreenAlgorithmsCredit =
    "Carbon intensity, PUE, TDP and reference values: Green Algorithms (Lannelongue, Grealey & "
    "Inouye, Adv. Sci. 2021), CC BY 4.0";

struct CpuTdp {
    std::string model;  // as the table names it, e.g. "Xeon Gold 6148"
    double tdp_per_core_w = 0.0;
};

struct CarbonIntensity {
    std::string location;                    // the table's code: "WORLD", "FR", "US-CA"
    std::string continent, country, region;  // region "Any" for a whole country
    double g_per_kwh = 0.0;
};

struct Datacenter {
    std::string provider, name, location;
    double pue = 0.0;  // 0 where the table gives none (the provider's default applies)
};

// The parsed tables. builtin() reads the copies embedded in the library; from_texts() takes
// the CSV texts by file name (tests). Rows with bad numbers are an Error naming the table.
class GreenAlgorithmsTables {
  public:
    static GreenAlgorithmsTables builtin();
    static GreenAlgorithmsTables from_texts(const std::map<std::string, std::string>& csv_by_name);

    // The row whose model name matches `cpuinfo_model` (the "model name" of /proc/cpuinfo):
    // every word of the table's name must appear among the words of the cpuinfo name once
    // "(R)", "(TM)", "CPU", "Processor", "N-Core" and "@ clock" are dropped, and the longest
    // such name wins. nullptr when none matches.
    const CpuTdp* find_cpu(std::string_view cpuinfo_model) const;
    // The "Any" row that Green Algorithms uses for unknown CPUs.
    const CpuTdp& default_cpu() const;

    // The row of a location code, case-insensitively ("fr" finds "FR"); nullptr if absent.
    const CarbonIntensity* find_location(std::string_view code) const;
    // The "WORLD" row (475 g/kWh in v3.0).
    const CarbonIntensity& world() const;
    const std::vector<CarbonIntensity>& locations() const { return locations_; }

    // PUE by provider code (defaults_PUE.csv, case-insensitive); nullptr if absent.
    const double* find_provider_pue(std::string_view provider) const;
    // The "Unknown" provider's PUE (1.56 in v3.0): the default for estimates.
    double default_pue() const;
    std::vector<std::string> providers() const;
    // A cloud region of a provider (cloudProviders_datacenters.csv); nullptr if absent.
    const Datacenter* find_datacenter(std::string_view provider, std::string_view region) const;

    // A value of referenceValues.csv ("memoryPower", "tree_month", "passengerCar_EU_perkm"…);
    // throws Error when the table lacks it.
    double reference(std::string_view variable) const;

  private:
    std::vector<CpuTdp> cpus_;
    CpuTdp default_cpu_;
    std::vector<CarbonIntensity> locations_;
    std::vector<std::pair<std::string, double>> provider_pue_;
    std::vector<Datacenter> datacenters_;
    std::map<std::string, double, std::less<>> references_;
};

// Lower-case words of a CPU model name with the marketing noise removed (see find_cpu).
std::vector<std::string> cpu_model_words(std::string_view model);

}  // namespace greenmoe

// Parsing and lookups of the Green Algorithms tables (see green_algorithms_tables.h).
#include "greenmoe/energy/green_algorithms_tables.h"

#include <algorithm>
#include <cctype>

#include "greenmoe/core/error.h"
#include "greenmoe/energy/csv_table.h"
#include "greenmoe/energy/green_algorithms_data.h"

namespace greenmoe {

namespace {

// Every Green Algorithms CSV has one row of units above its header.
constexpr int kUnitRows = 1;

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && lower(a) == lower(b);
}

const std::string& text_of(const std::map<std::string, std::string>& texts,
                           const std::string& name) {
    const auto it = texts.find(name);
    check(it != texts.end() && !it->second.empty(), "Green Algorithms table {} is missing", name);
    return it->second;
}

}  // namespace

std::vector<std::string> cpu_model_words(std::string_view model) {
    // "(R)" and "(TM)" become blanks; a copy rather than replace() in place, which GCC 12
    // mistakes for an overlapping memcpy (-Wrestrict).
    const std::string lowered = lower(model);
    std::string s;
    for (size_t i = 0; i < lowered.size();) {
        const std::string_view rest = std::string_view(lowered).substr(i);
        if (rest.starts_with("(r)")) {
            s += ' ';
            i += 3;
        } else if (rest.starts_with("(tm)")) {
            s += ' ';
            i += 4;
        } else {
            s += lowered[i++];
        }
    }
    if (const size_t at = s.find('@'); at != std::string::npos) s.resize(at);
    std::vector<std::string> words;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) ++i;
        size_t j = i;
        while (j < s.size() && s[j] != ' ' && s[j] != '\t' && s[j] != ',') ++j;
        if (j > i) {
            std::string w = s.substr(i, j - i);
            const bool core_count = w.size() > 5 && w.ends_with("-core") &&
                                    std::isdigit(static_cast<unsigned char>(w[0]));
            if (w != "cpu" && w != "processor" && !core_count) words.push_back(std::move(w));
        }
        i = j;
    }
    return words;
}

GreenAlgorithmsTables GreenAlgorithmsTables::builtin() {
    std::map<std::string, std::string> texts;
    for (std::string_view name : embedded_green_algorithms_files()) {
        texts[std::string(name)] = std::string(embedded_green_algorithms_csv(name));
    }
    return from_texts(texts);
}

GreenAlgorithmsTables GreenAlgorithmsTables::from_texts(
    const std::map<std::string, std::string>& texts) {
    GreenAlgorithmsTables t;
    bool have_default_cpu = false;
    {
        const CsvTable cpu(text_of(texts, "TDP_cpu.csv"), "TDP_cpu.csv", kUnitRows);
        const size_t model = cpu.column("model"), per_core = cpu.column("TDP_per_core");
        for (size_t r = 0; r < cpu.num_rows(); ++r) {
            CpuTdp row{cpu.text(r, model), cpu.number(r, per_core)};
            check(row.tdp_per_core_w > 0.0, "TDP_cpu.csv: row {} ('{}') has TDP_per_core {} ≤ 0",
                  r + 1, row.model, row.tdp_per_core_w);
            if (row.model == "Any") {
                t.default_cpu_ = row;
                have_default_cpu = true;
            } else {
                t.cpus_.push_back(std::move(row));
            }
        }
    }
    check(have_default_cpu, "TDP_cpu.csv: no 'Any' row (the default for unknown CPUs)");
    {
        const CsvTable ci(text_of(texts, "CI_aggregated.csv"), "CI_aggregated.csv", kUnitRows);
        const size_t loc = ci.column("location"), continent = ci.column("continentName"),
                     country = ci.column("countryName"), region = ci.column("regionName"),
                     value = ci.column("carbonIntensity");
        for (size_t r = 0; r < ci.num_rows(); ++r) {
            if (ci.text(r, loc).empty()) continue;
            t.locations_.push_back({ci.text(r, loc), ci.text(r, continent), ci.text(r, country),
                                    ci.text(r, region), ci.number(r, value)});
        }
    }
    check(t.find_location("WORLD") != nullptr, "CI_aggregated.csv: no 'WORLD' row");
    {
        const CsvTable pue(text_of(texts, "defaults_PUE.csv"), "defaults_PUE.csv", kUnitRows);
        const size_t provider = pue.column("provider"), value = pue.column("PUE");
        for (size_t r = 0; r < pue.num_rows(); ++r) {
            t.provider_pue_.emplace_back(pue.text(r, provider), pue.number(r, value));
        }
    }
    check(t.find_provider_pue("Unknown") != nullptr, "defaults_PUE.csv: no 'Unknown' row");
    {
        const CsvTable dc(text_of(texts, "cloudProviders_datacenters.csv"),
                          "cloudProviders_datacenters.csv", kUnitRows);
        const size_t provider = dc.column("provider"), name = dc.column("Name"),
                     loc = dc.column("location"), pue = dc.column("PUE");
        for (size_t r = 0; r < dc.num_rows(); ++r) {
            t.datacenters_.push_back(
                {dc.text(r, provider), dc.text(r, name), dc.text(r, loc), dc.number_or(r, pue, 0)});
        }
    }
    {
        const CsvTable ref(text_of(texts, "referenceValues.csv"), "referenceValues.csv", kUnitRows);
        const size_t variable = ref.column("variable"), value = ref.column("value");
        for (size_t r = 0; r < ref.num_rows(); ++r) {
            t.references_[ref.text(r, variable)] = ref.number(r, value);
        }
    }
    return t;
}

const CpuTdp* GreenAlgorithmsTables::find_cpu(std::string_view cpuinfo_model) const {
    const auto have = cpu_model_words(cpuinfo_model);
    const CpuTdp* best = nullptr;
    size_t best_length = 0;
    for (const auto& row : cpus_) {
        const auto want = cpu_model_words(row.model);
        if (want.empty()) continue;
        const bool all = std::all_of(want.begin(), want.end(), [&](const std::string& w) {
            return std::find(have.begin(), have.end(), w) != have.end();
        });
        if (all && row.model.size() > best_length) {
            best = &row;
            best_length = row.model.size();
        }
    }
    return best;
}

const CpuTdp& GreenAlgorithmsTables::default_cpu() const {
    return default_cpu_;
}

const CarbonIntensity* GreenAlgorithmsTables::find_location(std::string_view code) const {
    for (const auto& row : locations_) {
        if (iequals(row.location, code)) return &row;
    }
    return nullptr;
}

const CarbonIntensity& GreenAlgorithmsTables::world() const {
    return *find_location("WORLD");
}

const double* GreenAlgorithmsTables::find_provider_pue(std::string_view provider) const {
    for (const auto& [name, pue] : provider_pue_) {
        if (iequals(name, provider)) return &pue;
    }
    return nullptr;
}

double GreenAlgorithmsTables::default_pue() const {
    return *find_provider_pue("Unknown");
}

std::vector<std::string> GreenAlgorithmsTables::providers() const {
    std::vector<std::string> out;
    for (const auto& p : provider_pue_) out.push_back(p.first);
    return out;
}

const Datacenter* GreenAlgorithmsTables::find_datacenter(std::string_view provider,
                                                         std::string_view region) const {
    for (const auto& row : datacenters_) {
        if (iequals(row.provider, provider) && iequals(row.name, region)) return &row;
    }
    return nullptr;
}

double GreenAlgorithmsTables::reference(std::string_view variable) const {
    const auto it = references_.find(variable);
    check(it != references_.end(), "referenceValues.csv: no variable '{}'", variable);
    return it->second;
}

}  // namespace greenmoe

// RAPL energy through powercap sysfs (see powercap_meter.h).
#include "greenmoe/energy/powercap_meter.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <optional>
#include <system_error>

#include <fmt/format.h>

namespace greenmoe {

namespace fs = std::filesystem;

namespace {

// No RAPL zone draws more than this; a counter read at least twice per range/kMaxZonePowerW
// seconds cannot wrap twice between reads unnoticed.
constexpr double kMaxZonePowerW = 1000.0;
constexpr int kMaxDepth = 3;

struct ReadResult {
    std::optional<uint64_t> value;
    std::string error;
};

// One sysfs attribute holding an unsigned integer. open/read/close each time: sysfs
// regenerates the text on each open, and a directory or a root-only file fails here.
ReadResult read_uint(const fs::path& path) {
    ReadResult result;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        result.error = fmt::format("cannot read {}: {}", path.string(),
                                   std::error_code(errno, std::generic_category()).message());
        return result;
    }
    char buffer[64];
    const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
    const int read_errno = errno;
    ::close(fd);
    if (n < 0) {
        result.error = fmt::format("cannot read {}: {}", path.string(),
                                   std::error_code(read_errno, std::generic_category()).message());
        return result;
    }
    buffer[n] = '\0';
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(buffer, &end, 10);
    if (end == buffer || errno != 0 || (*end != '\0' && *end != '\n')) {
        result.error = fmt::format("{} does not hold an unsigned integer", path.string());
        return result;
    }
    result.value = v;
    return result;
}

std::string read_name(const fs::path& zone) {
    const int fd = ::open((zone / "name").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    char buffer[128];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    ::close(fd);
    std::string name(buffer, n > 0 ? size_t(n) : 0);
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    return name;
}

bool is_zone(const fs::path& dir) {
    std::error_code ec;
    return fs::is_regular_file(dir / "name", ec) && fs::exists(dir / "energy_uj", ec);
}

void collect_zones(const fs::path& dir, int depth, std::vector<fs::path>& out) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        const fs::path p = it->path();
        if (p.filename().string().find("rapl") == std::string::npos) continue;
        std::error_code ec2;
        if (!fs::is_directory(p, ec2)) continue;
        if (is_zone(p)) out.push_back(p);
        if (depth < kMaxDepth) collect_zones(p, depth + 1, out);
    }
}

struct Zone {
    fs::path energy_file;
    std::string label;  // "package-0", "package-0/dram"
    size_t source = 0;
    uint64_t max_range_uj = 0;
    uint64_t last_uj = 0;
    uint64_t used_uj = 0;
};

class PowercapMeter final : public EnergyMeter {
  public:
    PowercapMeter(std::vector<Zone> zones, std::vector<EnergySource> sources)
        : zones_(std::move(zones)), sources_(std::move(sources)) {}

    std::string name() const override { return "rapl"; }
    const std::vector<EnergySource>& sources() const override { return sources_; }

    void read(double /*now_s*/, std::span<double> joules) override {
        std::fill(joules.begin(), joules.end(), 0.0);
        for (auto& z : zones_) {
            // A failed read (a transient sysfs error) adds nothing; the next read catches up.
            const ReadResult r = read_uint(z.energy_file);
            if (r.value) {
                z.used_uj += counter_delta_uj(z.last_uj, *r.value, z.max_range_uj);
                z.last_uj = *r.value;
            }
            joules[z.source] += double(z.used_uj) * 1e-6;
        }
    }

    double max_read_interval_s() const override {
        double interval = std::numeric_limits<double>::infinity();
        for (const auto& z : zones_) {
            interval = std::min(interval, double(z.max_range_uj) * 1e-6 / kMaxZonePowerW / 2.0);
        }
        return interval;
    }

  private:
    std::vector<Zone> zones_;
    std::vector<EnergySource> sources_;
};

std::string join(const std::vector<std::string>& items, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) out += (i ? std::string(sep) : "") + items[i];
    return out;
}

}  // namespace

std::vector<fs::path> default_powercap_roots() {
    return {"/sys/class/powercap", "/sys/devices/virtual/powercap"};
}

MeterOpenResult open_powercap_meter(const std::vector<fs::path>& roots) {
    MeterOpenResult result;
    std::vector<std::string> root_names;
    std::vector<fs::path> found;
    for (const auto& root : roots) {
        root_names.push_back(root.string());
        collect_zones(root, 0, found);
    }

    // Canonical paths merge the two views of one zone and tell subzones by their parent.
    struct Candidate {
        fs::path path;
        std::string name, parent_name;
        bool sub = false;
    };
    std::vector<Candidate> candidates;
    std::vector<fs::path> seen;
    for (const auto& p : found) {
        std::error_code ec;
        const fs::path canonical = fs::canonical(p, ec);
        if (ec || std::find(seen.begin(), seen.end(), canonical) != seen.end()) continue;
        seen.push_back(canonical);
        Candidate c{canonical, read_name(canonical), {}, is_zone(canonical.parent_path())};
        if (c.sub) c.parent_name = read_name(canonical.parent_path());
        candidates.push_back(std::move(c));
    }
    // intel-rapl-mmio repeats a package of intel-rapl: keep the MSR copy, seen first.
    std::stable_sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
        const bool am = a.path.string().find("mmio") != std::string::npos;
        const bool bm = b.path.string().find("mmio") != std::string::npos;
        return am != bm ? bm : a.path < b.path;
    });

    std::vector<Zone> packages, drams;
    std::vector<std::string> labels;
    for (const auto& c : candidates) {
        const bool package = !c.sub && c.name.starts_with("package");
        const bool dram = c.name == "dram";
        // Packages are told apart by name (so mmio's copy repeats one); a top-level dram zone
        // by its folder, since every socket's would be called "dram".
        std::string label = c.sub     ? c.parent_name + "/" + c.name
                            : package ? c.name
                                      : fmt::format("{} ({})", c.name, c.path.filename().string());
        if (std::find(labels.begin(), labels.end(), label) != labels.end()) continue;
        if (!package && !dram) continue;  // core/uncore (inside a package), psys (whole platform)
        labels.push_back(label);
        Zone z;
        z.energy_file = c.path / "energy_uj";
        z.label = std::move(label);
        (package ? packages : drams).push_back(std::move(z));
    }
    if (packages.empty()) {
        result.unavailable_reason =
            fmt::format("no RAPL package zone under {}", join(root_names, " or "));
        return result;
    }

    // Reads range and first value; the error of the first zone that fails, or "".
    const auto prime = [](std::vector<Zone>& zones) -> std::string {
        for (auto& z : zones) {
            const ReadResult range = read_uint(z.energy_file.parent_path() / "max_energy_range_uj");
            if (!range.value || *range.value == 0) {
                return range.value ? fmt::format("{}/max_energy_range_uj is 0",
                                                 z.energy_file.parent_path().string())
                                   : range.error;
            }
            const ReadResult first = read_uint(z.energy_file);
            if (!first.value) return first.error;
            z.max_range_uj = *range.value;
            z.last_uj = *first.value;
        }
        return {};
    };
    if (std::string error = prime(packages); !error.empty()) {
        result.unavailable_reason =
            error +
            " (Linux makes RAPL counters readable by root only since 2020, "
            "CVE-2020-8694: run as root or `chmod a+r` the energy_uj files to measure)";
        return result;
    }
    if (!drams.empty()) {
        if (std::string error = prime(drams); !error.empty()) {
            result.notes.push_back("dram zone unreadable, RAM energy not measured: " + error);
            drams.clear();
        }
    } else {
        result.notes.push_back("no RAPL dram zone: RAM energy not measured by RAPL");
    }

    std::vector<EnergySource> sources;
    std::vector<std::string> package_labels, dram_labels;
    for (auto& z : packages) {
        z.source = 0;
        package_labels.push_back(z.label);
    }
    sources.push_back({std::string(kSourceCpu), true, "RAPL " + join(package_labels, " + ")});
    if (!drams.empty()) {
        for (auto& z : drams) {
            z.source = 1;
            dram_labels.push_back(z.label);
        }
        sources.push_back({std::string(kSourceRam), true, "RAPL " + join(dram_labels, " + ")});
    }
    std::vector<Zone> zones = std::move(packages);
    zones.insert(zones.end(), std::make_move_iterator(drams.begin()),
                 std::make_move_iterator(drams.end()));
    result.meter = std::make_unique<PowercapMeter>(std::move(zones), std::move(sources));
    return result;
}

}  // namespace greenmoe

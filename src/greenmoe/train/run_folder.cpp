// A training run's output folder (see run_folder.h).
#include "greenmoe/train/run_folder.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "greenmoe/core/error.h"
#include "greenmoe/energy/emissions_csv.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/run_lock.h"
#include "greenmoe/train/checkpoint.h"

namespace greenmoe {

namespace fs = std::filesystem;

namespace {

// The run files already in `out`, comma-separated (empty when there are none).
std::string earlier_run_files(const fs::path& out, const std::vector<std::string>& names) {
    std::string found;
    for (const std::string& name : names) {
        if (!fs::exists(out / name)) continue;
        if (!found.empty()) found += ", ";
        found += name;
    }
    return found;
}

// Moves everything but the lock into <out>.old-N (the first free N); returns that folder.
fs::path move_earlier_run(const fs::path& out) {
    fs::path dest;
    for (int n = 1;; ++n) {
        dest = out.string() + ".old-" + std::to_string(n);
        if (!fs::exists(dest)) break;
    }
    fs::create_directories(dest);
    for (const auto& entry : fs::directory_iterator(out)) {
        if (entry.path().filename() == RunLock::kFileName) continue;
        fs::rename(entry.path(), dest / entry.path().filename());
    }
    return dest;
}

}  // namespace

RunFolderClaim prepare_run_folder(const fs::path& out, bool resume, bool move_old_run,
                                  const std::vector<std::string>& run_files, bool quiet) {
    RunFolderClaim claim;
    if (!resume) {
        const std::string files = earlier_run_files(out, run_files);
        if (!files.empty()) {
            usage_check(move_old_run,
                        "{}: holds an earlier run ({}); starting over there would mix its "
                        "checkpoints and log with the new run's: pass --move-old-run to move it "
                        "to {}.old-N first, or use another --out",
                        out.string(), files, out.string());
            claim.moved_old_run = move_earlier_run(out);
            if (!quiet) {
                std::fprintf(stderr, "greenmoe train: moved the earlier run in %s to %s\n",
                             out.c_str(), claim.moved_old_run.c_str());
            }
        }
    }
    const int unfinished = remove_unfinished_checkpoints(out);
    if (unfinished > 0 && !quiet) {
        std::fprintf(stderr,
                     "greenmoe train: removed %d unfinished checkpoint save%s (.tmp_step_*) "
                     "left by an interrupted run\n",
                     unfinished, unfinished == 1 ? "" : "s");
    }
    claim.lost_segment = last_segment_without_end(out / "log.jsonl");
    return claim;
}

std::optional<nlohmann::json> last_segment_without_end(const fs::path& log) {
    if (!fs::exists(log)) return std::nullopt;
    std::istringstream in(read_file(log));
    std::optional<nlohmann::json> last;
    bool open = false;
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;  // a torn line
        const std::string type = j.value("type", "");
        if (type == "start") {
            open = true;
            last.reset();
        } else if (type == "end" || type == "lost_segment") {
            open = false;
            last.reset();
        } else if (open && j.contains("segment")) {
            last = j;
        }
    }
    return open ? last : std::nullopt;
}

nlohmann::json segment_json(const EnergyMeasurement& m) {
    return {{"seconds", m.seconds},
            {"joules", m.joules},
            {"joules_with_pue", m.total_joules_with_pue},
            {"pue", m.pue},
            {"kwh", m.kwh},
            {"co2e_g", m.co2e_g},
            {"source", m.source_label}};
}

EnergyMeasurement segment_from_json(const nlohmann::json& j) {
    EnergyMeasurement m;
    m.name = "run";
    m.seconds = j.value("seconds", 0.0);
    m.joules = j.value("joules", std::map<std::string, double>{});
    for (const auto& [k, v] : m.joules) m.total_joules += v;
    m.total_joules_with_pue = j.value("joules_with_pue", 0.0);
    m.pue = j.value("pue", 1.0);
    m.kwh = j.value("kwh", 0.0);
    m.co2e_g = j.value("co2e_g", 0.0);
    m.source_label = j.value("source", "") + " (as last logged before the process was killed)";
    return m;
}

LostSegment record_lost_segment(const nlohmann::json& lost, const fs::path& out,
                                const EnergyMonitor& energy) {
    LostSegment s;
    s.energy = segment_from_json(lost.at("segment"));
    EmissionsCsv(out / "emissions.csv").append(energy.emissions_row(s.energy));
    const int64_t last_step = lost.value("step", int64_t{-1});
    s.log_record = {{"type", "lost_segment"},
                    {"last_logged_step", last_step},
                    {"energy_j", s.energy.total_joules_with_pue},
                    {"co2e_g", s.energy.co2e_g},
                    {"seconds", s.energy.seconds}};
    std::fprintf(stderr,
                 "greenmoe train: the previous run of this folder ended without its "
                 "emissions.csv row (killed?); recorded its energy as far as log.jsonl shows "
                 "it: %.1f J, %.3g g CO2e up to step %lld (what it spent after that is lost)\n",
                 s.energy.total_joules_with_pue, s.energy.co2e_g,
                 static_cast<long long>(last_step));
    return s;
}

double last_logged_train_loss(const fs::path& log) {
    if (!fs::exists(log)) return 0.0;
    std::istringstream in(read_file(log));
    double loss = 0.0;
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.value("type", "") == "train")
            loss = j.value("loss", loss);
    }
    return loss;
}

}  // namespace greenmoe

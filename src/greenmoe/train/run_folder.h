// What every training run, full or LoRA, does with its output folder: claims it (refusing or
// moving aside an earlier run, removing a killed save's leftovers), and reads back from its
// log.jsonl what a killed segment left behind (its last energy, its last training loss).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/energy/energy_monitor.h"

namespace greenmoe {

struct RunFolderClaim {
    std::filesystem::path moved_old_run;         // where --move-old-run put an earlier run
    std::optional<nlohmann::json> lost_segment;  // see last_segment_without_end
};

// Run while holding the folder's RunLock. Starting over (!resume) where `run_files` (the
// names a run writes there) already exist is a UsageError unless move_old_run, which moves
// everything but the lock to <out>.old-N first. Then removes unfinished checkpoint saves,
// and reads the last segment a killed process logged (before the log is cut back to the
// checkpoint, which drops those lines). Says what it did on stderr unless quiet.
RunFolderClaim prepare_run_folder(const std::filesystem::path& out, bool resume, bool move_old_run,
                                  const std::vector<std::string>& run_files, bool quiet);

// The last record with a "segment" (energy so far) that a run segment logged when it ended
// without its "end" record, i.e. without its emissions.csv row (a killed process); else none.
std::optional<nlohmann::json> last_segment_without_end(const std::filesystem::path& log);

// A measurement as a log record's "segment" field, and back (labelled as last logged).
nlohmann::json segment_json(const EnergyMeasurement& m);
EnergyMeasurement segment_from_json(const nlohmann::json& j);

struct LostSegment {
    EnergyMeasurement energy;   // what the killed segment spent, as far as its log shows
    nlohmann::json log_record;  // the "lost_segment" record for the new segment's log
};

// A segment killed before its emissions row (SIGKILL, a crash) still cost energy: appends
// its last logged measurement (`lost`, from last_segment_without_end) to
// out/emissions.csv as its row and says so on stderr; the caller logs the record and adds
// the energy to the run's totals.
LostSegment record_lost_segment(const nlohmann::json& lost, const std::filesystem::path& out,
                                const EnergyMonitor& energy);

// The loss of the last train record in a log (0 when it has none): the final training loss
// of a run resumed at its last step, which trains no step itself.
double last_logged_train_loss(const std::filesystem::path& log);

}  // namespace greenmoe

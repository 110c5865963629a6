// Running a sweep's grid: each run is a `greenmoe train` child process (so a run that fails
// leaves the others going, and each run folder is an ordinary resumable run), one after
// another or several at once with the threads shared out. Finished runs are skipped;
// unfinished ones resume from their checkpoints.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "greenmoe/sweep/sweep_spec.h"

namespace greenmoe::sweep {

struct SweepOptions {
    std::filesystem::path out_dir;
    std::filesystem::path executable;     // the greenmoe binary that trains each run
    std::vector<std::string> train_args;  // more `greenmoe train` arguments for every run
    int jobs = 1;                         // runs at once
    int threads = 0;  // threads shared out between the jobs; 0 = the CPUs this process may use
    bool quiet = false;
};

struct SweepOutcome {
    int done = 0, failed = 0, unfinished = 0;
    int stop_signal = 0;    // SIGINT / SIGTERM that stopped the sweep early, else 0
    double seconds = 0.0;   // this invocation's wall time
    double energy_j = 0.0;  // all runs' energy so far (their logs), PUE included
    double co2e_g = 0.0;
};

// Writes OUT/sweep.json (checking that an existing one describes the same runs), then
// trains every unfinished run. SIGINT / SIGTERM stop the running trainings at their next
// step (they save a checkpoint) and end the sweep; running it again carries on.
SweepOutcome run_sweep(const SweepPlan& plan, const SweepOptions& options);

// How far a run folder got, from the end of its log.jsonl.
struct RunProgress {
    int64_t step = 0;                // last logged train step
    std::optional<double> energy_j;  // energy logged with it (all segments, PUE included)
    std::optional<double> co2e_g;
    bool done = false;  // the log ends the run with a "done" record
};
RunProgress read_run_progress(const std::filesystem::path& run_dir);

// The CPUs this process may run on (its affinity mask), in order.
std::vector<int> usable_cpus();

}  // namespace greenmoe::sweep

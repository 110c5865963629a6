// `greenmoe sweep --estimate`: a few measured training steps (and one short evaluation of
// each kind the runs do) per distinct setting, then the time, energy and CO2e the whole
// grid will take on this machine, before anything long starts — as carbontracker predicts
// a training's footprint from its first epoch.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/sweep/sweep_runner.h"
#include "greenmoe/sweep/sweep_spec.h"

namespace greenmoe::sweep {

// What one setting's probe measured and what its runs will cost.
struct SettingEstimate {
    std::string setting;
    int runs = 0;                    // its runs in the grid (seeds)
    int runs_left = 0;               // of those, not finished yet
    double step_seconds = 0.0;       // mean over the measured steps (the first left out)
    double watts = 0.0;              // energy per second while training, PUE included
    double grams_per_joule = 0.0;    // CO2e of a joule at the chosen location
    double val_seconds = 0.0;        // one validation pass (0: the runs do not validate)
    double hellaswag_seconds = 0.0;  // one HellaSwag evaluation of the runs' size (0: none)
    double run_seconds = 0.0;        // one whole run: steps and evaluations
    double run_joules = 0.0;
};

struct GridEstimate {
    std::vector<SettingEstimate> settings;
    double seconds = 0.0, joules = 0.0, co2e_g = 0.0;              // the runs not finished yet
    double all_seconds = 0.0, all_joules = 0.0, all_co2e_g = 0.0;  // the whole grid
    int jobs = 1;
};

// Trains `probe_steps` steps of one run per setting in OUT/.estimate (removed afterwards)
// with the threads a run of the real sweep gets, and extrapolates.
GridEstimate estimate_sweep(const SweepPlan& plan, const SweepOptions& options,
                            int probe_steps = 6);

std::string estimate_table(const GridEstimate& estimate);

}  // namespace greenmoe::sweep

// DIR/sweep.json: what a `greenmoe sweep` grid is and how far each of its runs got. The
// sweep rewrites it (atomically) as runs start and end; `sweep --summary` and `report` read
// it to find the runs and the setting each belongs to.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace greenmoe::sweep {

struct SweepRunState {
    // The run's folder under the sweep folder, e.g. "mlp-switch_mechanism-load_seed-1337".
    std::string name;
    // The run's setting: the same name without the seed ("mlp-switch_mechanism-load"). Runs
    // of one setting differ only in their seed; summaries aggregate over them.
    std::string setting;
    // The value label of each axis, in axis order: {"model.mlp", "switch"},
    // {"mechanism", "load"}.
    std::vector<std::pair<std::string, std::string>> values;
    uint64_t seed = 0;
    std::vector<std::string> overrides;  // the --set assignments the run is trained with
    std::string status = "pending";      // "pending", "running", "done", "failed"
    std::string error;                   // why it failed (status "failed")
    double seconds = 0.0;                // wall time the sweep spent on it, all attempts
};

struct SweepState {
    int version = 1;
    std::string base;               // the preset every run starts from (absolute path)
    std::vector<std::string> axes;  // axis keys in order: "model.mlp", "mechanism"
    std::string baseline;           // the setting others are compared with; "" = none
    nlohmann::json spec;            // the spec file as read
    std::vector<SweepRunState> runs;
};

// Throws Error naming DIR/sweep.json when it is missing or malformed.
SweepState read_sweep_state(const std::filesystem::path& dir);
void write_sweep_state(const std::filesystem::path& dir, const SweepState& state);
nlohmann::json sweep_state_to_json(const SweepState& state);
SweepState sweep_state_from_json(const nlohmann::json& j, const std::string& file);

}  // namespace greenmoe::sweep

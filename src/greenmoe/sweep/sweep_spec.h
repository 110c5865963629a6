// A sweep spec (SPEC.json): a base preset, axes of settings and seeds, expanded into the
// grid of training runs it describes. Every run's configuration is checked when the spec
// is read, so a bad key or value is refused before anything runs.
//
//   {"base": "../nano.json",                          (relative to the spec file)
//    "set": {"train.max_steps": 100},                 (every run; optional)
//    "axes": {"model.mlp": ["dense", "switch"],       (a config key: its values)
//             "mechanism": ["none", "load", "bias"]}, (named settings, below)
//    "mechanisms": {"load": {"model.w_load": 0.01}},  (adds to or replaces the built-in ones)
//    "seeds": [1, 2],                                 (or a count: base seed, +1, …)
//    "exclude": [{"model.mlp": "dense", "mechanism": ["load", "bias"]}],
//    "baseline": {"model.mlp": "dense", "mechanism": "none"}}
//
// An axis value may also be an object {"label": "lr-hi", "set": {"train.lr": 1e-3}}.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/sweep/sweep_state.h"

namespace greenmoe::sweep {

// One value of an axis: its label in names and tables, and the settings it makes.
struct AxisValue {
    std::string label;
    std::vector<std::pair<std::string, nlohmann::json>> settings;  // "section.key" → value
};

struct Axis {
    std::string key;         // "model.mlp", "mechanism", or any name of named settings
    std::string short_name;  // in run names: the part after the last '.' ("mlp")
    std::vector<AxisValue> values;
};

struct SweepPlan {
    std::filesystem::path spec_file;
    std::filesystem::path base;  // absolute path of the base preset
    nlohmann::json spec;
    std::vector<Axis> axes;
    std::vector<uint64_t> seeds;
    std::string baseline;  // setting name, "" = none
    std::vector<SweepRunState>
        runs;  // the grid, axis by axis (the last varies fastest), seeds innermost
};

// The study's balancing mechanisms, one at a time (weight 0.1; the loss-free bias with
// γ 0.001), each also turning the other four off: none, load, importance, z, penalty, bias.
nlohmann::json builtin_mechanisms();

// Reads and expands SPEC, then loads every run's configuration (base + overrides) as
// `greenmoe train` would. Errors name the spec file and the key or value at fault.
SweepPlan read_sweep_plan(const std::filesystem::path& spec_file);

// The state a new sweep folder starts with.
SweepState initial_state(const SweepPlan& plan);

}  // namespace greenmoe::sweep

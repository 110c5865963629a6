// `greenmoe bench` over several models: each opened in turn (a failure becomes a failed row and
// the others are still measured), its peak memory, what pruning removed, the idle power, and
// the reductions against the baseline model.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "greenmoe/bench/bench_results.h"
#include "greenmoe/bench/inference_bench.h"
#include "greenmoe/energy/energy_monitor.h"

namespace greenmoe {

struct BenchSuite {
    std::vector<std::string> models;  // folders or checkpoints, in order
    std::string baseline;             // the original model ("" = none); measured first
    std::string tokenizer;            // for models without their own ("" = theirs)
    BenchProtocol protocol;
    double idle_seconds = 0.0;  // idle power read before any model (only from counters)
};

struct BenchOutcome {
    std::vector<BenchRow> rows;
    // Per row: the sum of its measured runs' windows (what emissions.csv records); zero for
    // failed rows and without a monitor.
    std::vector<EnergyMeasurement> energy;
};

// Runs the protocol on every model (the baseline first). `on_row` sees each row as it is
// finished (reductions are filled in only in the returned rows).
BenchOutcome run_bench_suite(const BenchSuite& suite, const BenchMeters& meters,
                             const std::function<void(const std::string&)>& progress = {},
                             const std::function<void(const BenchRow&)>& on_row = {});

}  // namespace greenmoe

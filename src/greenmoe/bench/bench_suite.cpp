// Several models through the bench protocol (see bench_suite.h).
#include "greenmoe/bench/bench_suite.h"

#include <chrono>
#include <filesystem>
#include <numeric>
#include <thread>

#include <nlohmann/json.hpp>

#include "greenmoe/bench/peak_memory.h"
#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string absolute_path(const std::string& path) {
    std::error_code ec;
    const fs::path abs = fs::absolute(path, ec);
    return ec ? path : abs.lexically_normal().string();
}

// What `greenmoe simplify` wrote beside a pruned model: its criterion and how much it removed.
void read_simplify_summary(const std::string& model, BenchRow& row) {
    const fs::path file = fs::path(model) / "summary.json";
    if (!fs::is_regular_file(file)) return;
    const Json j = Json::parse(read_file(file), nullptr, false);
    if (!j.is_object() || !j.contains("greenmoe_simplify")) return;
    row.criterion = j.value("criterion", std::string());
    int64_t before = 0, kept = 0;
    if (j.contains("layers") && j["layers"].is_array()) {
        for (const auto& layer : j["layers"]) {
            before += layer.value("n_experts", int64_t{0});
            kept += layer.value("n_kept", int64_t{0});
        }
    }
    if (before > 0) row.experts_pruned_percent = 100.0 * double(before - kept) / double(before);
    if (j.contains("parameters") && j["parameters"].is_object()) {
        const auto& p = j["parameters"];
        if (p.contains("expert_reduction_percent") && p["expert_reduction_percent"].is_number())
            row.expert_params_pruned_percent = p["expert_reduction_percent"].get<double>();
    }
}

int total_experts(const std::vector<int>& per_layer) {
    return std::accumulate(per_layer.begin(), per_layer.end(), 0);
}

// Idle power from the counters only: an estimate of an idle machine is the estimate's own
// assumption, not a reading.
std::optional<double> measure_idle_power(EnergyMonitor& energy, double seconds) {
    energy.begin_window("bench-idle");
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const EnergyMeasurement m = energy.end_window("bench-idle");
    double joules = 0.0;
    bool any = false;
    for (const auto& [source, j] : m.joules) {
        if (!m.source_measured.at(source)) continue;
        joules += j;
        any = true;
    }
    if (!any || m.seconds <= 0.0) return std::nullopt;
    return joules / m.seconds;
}

}  // namespace

BenchOutcome run_bench_suite(const BenchSuite& suite, const BenchMeters& meters,
                             const std::function<void(const std::string&)>& progress,
                             const std::function<void(const BenchRow&)>& on_row) {
    std::vector<std::string> order;
    if (!suite.baseline.empty()) order.push_back(suite.baseline);
    for (const auto& m : suite.models) {
        if (m != suite.baseline) order.push_back(m);
    }
    std::optional<double> idle;
    if (meters.energy && suite.idle_seconds > 0.0) {
        if (progress) progress(fmt::format("idle power: {:g} s", suite.idle_seconds));
        idle = measure_idle_power(*meters.energy, suite.idle_seconds);
    }

    BenchOutcome out;
    std::optional<BenchRow> baseline_row;
    for (size_t i = 0; i < order.size(); ++i) {
        const std::string& path = order[i];
        const bool is_baseline = !suite.baseline.empty() && i == 0;
        const bool scoped = reset_peak_rss();
        std::vector<BenchRow> rows;
        std::vector<EnergyMeasurement> energy;
        try {
            const auto model = open_language_model(path, suite.tokenizer);
            rows = bench_language_model(
                *model, suite.protocol, meters,
                [&](const std::string& what) {
                    if (progress) progress(fmt::format("{}: {}", path, what));
                },
                &energy);
        } catch (const std::exception& e) {
            rows.clear();
            for (const int batch : suite.protocol.batches) {
                BenchRow failed;
                failed.model = path;
                failed.batch = batch;
                failed.ok = false;
                failed.error = e.what();
                failed.prompt_tokens = suite.protocol.prompt_tokens;
                failed.new_tokens = suite.protocol.new_tokens;
                failed.warmup = suite.protocol.warmup;
                failed.repeats = suite.protocol.repeats;
                rows.push_back(failed);
            }
            energy.assign(rows.size(), EnergyMeasurement{});
        }
        const double peak = peak_rss_now();
        for (BenchRow& row : rows) {
            row.model_absolute = absolute_path(path);
            row.baseline = is_baseline;
            if (!row.ok) continue;
            row.idle_power_w = idle;
            row.peak_rss_bytes = peak;
            row.peak_rss_scope = scoped ? "model" : "process";
            if (meters.energy) row.location = meters.energy->carbon().location.location;
            read_simplify_summary(path, row);
            if (is_baseline) {
                row.experts_pruned_percent = 0.0;
            } else if (!row.experts_pruned_percent && baseline_row && baseline_row->ok &&
                       baseline_row->experts_per_layer.size() == row.experts_per_layer.size() &&
                       total_experts(baseline_row->experts_per_layer) > 0) {
                const int base = total_experts(baseline_row->experts_per_layer);
                row.experts_pruned_percent =
                    100.0 * double(base - total_experts(row.experts_per_layer)) / double(base);
            }
        }
        for (size_t r = 0; r < rows.size(); ++r) {
            if (on_row) on_row(rows[r]);
            out.rows.push_back(rows[r]);
            out.energy.push_back(energy[r]);
        }
        if (is_baseline && !rows.empty()) baseline_row = rows.front();
    }
    compute_reductions(out.rows);
    return out;
}

}  // namespace greenmoe

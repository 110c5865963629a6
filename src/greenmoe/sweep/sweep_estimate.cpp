// Predicting a sweep's cost from a few measured steps per setting (see sweep_estimate.h).
#include "greenmoe/sweep/sweep_estimate.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/stop_signal.h"
#include "greenmoe/train/train_config.h"

namespace greenmoe::sweep {

namespace fs = std::filesystem;

namespace {

// HellaSwag's validation set, what a run with hellaswag_limit 0 evaluates.
constexpr int64_t kHellaSwagItems = 10042;
// Items the probe evaluates to time HellaSwag.
constexpr int64_t kProbeHellaSwagItems = 40;

// Evaluations a run of `steps` steps does every `every` steps (at steps 0 < s < steps, and
// from `first` on) plus the final one.
int64_t evaluations(int64_t steps, int64_t every, bool at_step_zero) {
    if (every <= 0) return 0;
    return (steps - 1) / every + (at_step_zero ? 1 : 0) + 1;
}

struct ProbeLog {
    std::vector<double> step_seconds;  // per train record, in order
    std::vector<double> energy_j;      // cumulative, per train record (when logged)
    std::vector<double> co2e_g;
    std::vector<double> val_seconds;
    double hellaswag_seconds = 0.0;
    int64_t hellaswag_items = 0;
};

ProbeLog read_probe_log(const fs::path& run) {
    ProbeLog p;
    std::istringstream in(read_file(run / "log.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;
        const std::string type = j.value("type", "");
        if (type == "train") {
            p.step_seconds.push_back(j.value("step_ms", 0.0) / 1e3);
            if (j.contains("energy_j")) {
                p.energy_j.push_back(j.value("energy_j", 0.0));
                p.co2e_g.push_back(j.value("co2e_g", 0.0));
            }
        } else if (type == "val") {
            p.val_seconds.push_back(j.value("seconds", 0.0));
        } else if (type == "eval" && j.value("task", "") == "hellaswag") {
            p.hellaswag_seconds = j.value("seconds", 0.0);
            p.hellaswag_items = j.value("items", int64_t{0});
        }
    }
    return p;
}

std::string hours(double seconds) {
    return ProgressBar::format_duration(seconds);
}

}  // namespace

GridEstimate estimate_sweep(const SweepPlan& plan, const SweepOptions& options, int probe_steps) {
    check(probe_steps >= 2, "sweep --estimate: needs at least 2 probe steps, got {}", probe_steps);
    // One probe per setting: its first seed's run, cut short.
    SweepPlan probes = plan;
    probes.runs.clear();
    std::map<std::string, int> runs_of, left_of;
    for (const SweepRunState& r : plan.runs) {
        ++runs_of[r.setting];
        if (!read_run_progress(options.out_dir / r.name).done) ++left_of[r.setting];
        if (runs_of[r.setting] > 1) continue;
        const TrainConfig c = load_train_config(plan.base.string(), r.overrides);
        SweepRunState probe = r;
        probe.name = r.setting;
        const int64_t steps = std::min<int64_t>(probe_steps, c.max_steps);
        for (const std::string& s :
             {fmt::format("train.max_steps={}", steps), std::string("train.log_every=1"),
              std::string("checkpoint.every=0"), std::string("eval.sample_every=0"),
              fmt::format("eval.val_every={}", c.val_every > 0 ? steps : 0),
              fmt::format("eval.hellaswag_every={}", c.hellaswag_every > 0 ? steps : 0)}) {
            probe.overrides.push_back(s);
        }
        if (c.hellaswag_every > 0) {
            const int64_t items = c.hellaswag_limit > 0 ? c.hellaswag_limit : kHellaSwagItems;
            probe.overrides.push_back(
                fmt::format("eval.hellaswag_limit={}", std::min(items, kProbeHellaSwagItems)));
        }
        probes.runs.push_back(std::move(probe));
    }

    const fs::path probe_dir = options.out_dir / ".estimate";
    fs::remove_all(probe_dir);
    SweepOptions probe_options = options;
    probe_options.out_dir = probe_dir;
    // Each probe alone, with the threads one run of the real sweep gets.
    const int threads =
        options.threads > 0 ? options.threads : static_cast<int>(usable_cpus().size());
    probe_options.threads = std::max(1, threads / std::max(1, options.jobs));
    probe_options.jobs = 1;
    const SweepOutcome probed = run_sweep(probes, probe_options);
    check(probed.stop_signal == 0, "sweep --estimate: stopped by {}",
          signal_name(probed.stop_signal));

    GridEstimate grid;
    grid.jobs = std::max(1, options.jobs);
    const SweepState state = read_sweep_state(probe_dir);
    for (const SweepRunState& probe : state.runs) {
        check(probe.status == "done", "sweep --estimate: the probe of {} failed: {}", probe.setting,
              probe.error);
        const SweepRunState& first =
            *std::find_if(plan.runs.begin(), plan.runs.end(),
                          [&](const SweepRunState& r) { return r.setting == probe.setting; });
        const TrainConfig c = load_train_config(plan.base.string(), first.overrides);
        const ProbeLog log = read_probe_log(probe_dir / probe.name);
        check(log.step_seconds.size() >= 2, "sweep --estimate: the probe of {} logged {} steps",
              probe.setting, log.step_seconds.size());
        SettingEstimate e;
        e.setting = probe.setting;
        e.runs = runs_of[probe.setting];
        e.runs_left = left_of[probe.setting];
        // The first step allocates and warms the caches: left out.
        double measured = 0.0;
        for (size_t i = 1; i < log.step_seconds.size(); ++i) measured += log.step_seconds[i];
        e.step_seconds = measured / static_cast<double>(log.step_seconds.size() - 1);
        if (log.energy_j.size() >= 2 && measured > 0) {
            e.watts = (log.energy_j.back() - log.energy_j.front()) / measured;
            const double joules = log.energy_j.back() - log.energy_j.front();
            e.grams_per_joule = joules > 0 ? (log.co2e_g.back() - log.co2e_g.front()) / joules : 0;
        }
        if (!log.val_seconds.empty()) {
            double sum = 0.0;
            for (double s : log.val_seconds) sum += s;
            e.val_seconds = sum / static_cast<double>(log.val_seconds.size());
        }
        if (log.hellaswag_items > 0) {
            const int64_t items = c.hellaswag_limit > 0 ? c.hellaswag_limit : kHellaSwagItems;
            e.hellaswag_seconds = log.hellaswag_seconds / static_cast<double>(log.hellaswag_items) *
                                  static_cast<double>(items);
        }
        e.run_seconds =
            static_cast<double>(c.max_steps) * e.step_seconds +
            static_cast<double>(evaluations(c.max_steps, c.val_every, true)) * e.val_seconds +
            static_cast<double>(evaluations(c.max_steps, c.hellaswag_every, false)) *
                e.hellaswag_seconds;
        e.run_joules = e.run_seconds * e.watts;
        grid.seconds += e.run_seconds * e.runs_left;
        grid.joules += e.run_joules * e.runs_left;
        grid.co2e_g += e.run_joules * e.runs_left * e.grams_per_joule;
        grid.all_seconds += e.run_seconds * e.runs;
        grid.all_joules += e.run_joules * e.runs;
        grid.all_co2e_g += e.run_joules * e.runs * e.grams_per_joule;
        grid.settings.push_back(e);
    }
    fs::remove_all(probe_dir);
    return grid;
}

std::string estimate_table(const GridEstimate& g) {
    std::string out =
        fmt::format("{:<40} {:>5} {:>9} {:>7} {:>9} {:>10} {:>10} {:>11}\n", "setting", "runs",
                    "s/step", "W", "val s", "HellaSwag s", "per run", "kWh/run");
    for (const SettingEstimate& e : g.settings) {
        out += fmt::format("{:<40} {:>5} {:>9.3f} {:>7.1f} {:>9.1f} {:>10.1f} {:>10} {:>11.4g}\n",
                           e.setting, e.runs, e.step_seconds, e.watts, e.val_seconds,
                           e.hellaswag_seconds, hours(e.run_seconds), e.run_joules / 3.6e6);
    }
    const auto line = [&](const char* what, double seconds, double joules, double grams) {
        return fmt::format("{}: {} one run after another{}, {:.4g} kWh, {:.4g} gCO2e\n", what,
                           hours(seconds),
                           g.jobs > 1 ? fmt::format(" (about {} with {} at once, if they "
                                                    "share the cores without loss)",
                                                    hours(seconds / g.jobs), g.jobs)
                                      : std::string(),
                           joules / 3.6e6, grams);
    };
    out += line("whole grid", g.all_seconds, g.all_joules, g.all_co2e_g);
    if (g.seconds < g.all_seconds) out += line("runs left", g.seconds, g.joules, g.co2e_g);
    out +=
        "measured: steps after the first, one validation and a short HellaSwag per setting; "
        "energy as each run measures it (PUE included)\n";
    return out;
}

}  // namespace greenmoe::sweep

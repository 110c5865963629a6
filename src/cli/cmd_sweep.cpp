// `greenmoe sweep`: train a grid of settings × seeds from a spec, estimate its cost first,
// and summarise it over seeds.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/output_paths.h"
#include "greenmoe/sweep/sweep_estimate.h"
#include "greenmoe/sweep/sweep_runner.h"
#include "greenmoe/sweep/sweep_spec.h"
#include "greenmoe/sweep/sweep_summary.h"

namespace greenmoe::cli {

namespace {

// Prints the summary table and writes DIR/summary.csv (or `csv`).
void summarize(const std::filesystem::path& dir, const std::string& csv) {
    const sweep::SweepSummary summary = sweep::summarize_sweep(dir);
    std::fputs(sweep::summary_table(summary).c_str(), stdout);
    const std::filesystem::path path =
        csv.empty() ? dir / "summary.csv" : std::filesystem::path(csv);
    write_file_atomic(path, sweep::summary_csv(summary));
    std::fprintf(stderr, "greenmoe sweep: summary written to %s\n", path.c_str());
}

}  // namespace

void register_sweep(CLI::App& app) {
    struct Args {
        std::string spec, out, summary, csv, data_dir, cache_dir, tokenizer;
        bool estimate = false, quiet = false;
        int jobs = 1, threads = 0, probe_steps = 6;
        EnergyOptions energy;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "sweep",
        "Train a grid of runs: a base preset, axes of settings (model.mlp, model.attn, a "
        "balancing mechanism, any section.key) and seeds, from a spec file (configs/sweeps/). "
        "Each run is an ordinary run folder OUT/<setting>_seed-<seed>; OUT/sweep.json records "
        "the grid and each run's state. Started again, a sweep skips finished runs and resumes "
        "unfinished ones from their checkpoints; a failed run is recorded and the others go on. "
        "--estimate measures a few steps per setting and predicts the grid's time, kWh and "
        "CO2e; --summary aggregates finished runs over seeds (mean ± 95 % interval, "
        "difference from the baseline).");
    CLI::Option* spec =
        cmd->add_option("--spec", args->spec, "sweep spec (JSON; see docs/sweep.md)")
            ->check(CLI::ExistingFile);
    CLI::Option* out = cmd->add_option("-o,--out", args->out, "sweep folder");
    CLI::Option* summary =
        cmd->add_option("--summary", args->summary,
                        "summarise the sweep folder DIR over seeds: a table on the console and "
                        "DIR/summary.csv")
            ->check(CLI::ExistingDirectory);
    summary->excludes(spec)->excludes(out);
    cmd->add_option("--csv", args->csv, "with --summary: write the CSV here instead");
    cmd->add_flag("--estimate", args->estimate,
                  "measure a few steps of one run per setting (and one short evaluation of each "
                  "kind the runs do), print the predicted time, kWh and CO2e of the grid, and "
                  "stop")
        ->needs(spec);
    cmd->add_option("--probe-steps", args->probe_steps,
                    "with --estimate: steps trained per setting (the first is left out)")
        ->check(CLI::Range(2, 1000))
        ->capture_default_str();
    cmd->add_option("-j,--jobs", args->jobs,
                    "runs trained at once, the threads shared out between them (each pinned to "
                    "its own cores)")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--threads", args->threads,
                    "threads in all (default: the CPUs this process may use)")
        ->check(positive_count());
    cmd->add_option("--data-dir", args->data_dir,
                    "given to every run: folder holding datasets (default $GREENMOE_DATA)");
    cmd->add_option("--cache-dir", args->cache_dir, "given to every run: downloads and shards");
    cmd->add_option("--tokenizer", args->tokenizer,
                    "given to every run: folder with encoder.json and vocab.bpe");
    cmd->add_flag("-q,--quiet", args->quiet, "no progress line on the console");
    add_energy_options(cmd, args->energy);
    cmd->callback([args, spec, out]() {
        if (!args->summary.empty()) {
            summarize(args->summary, args->csv);
            return;
        }
        usage_check(spec->count() > 0, "sweep: give --spec SPEC.json --out DIR, or --summary DIR");
        usage_check(out->count() > 0, "sweep: --out DIR is needed with --spec");
        usage_check(args->csv.empty(), "sweep: --csv goes with --summary");
        check_output_folder(args->out, "--out");
        const sweep::SweepPlan plan = sweep::read_sweep_plan(args->spec);
        sweep::SweepOptions options;
        options.out_dir = args->out;
        options.executable = std::filesystem::read_symlink("/proc/self/exe");
        options.jobs = args->jobs;
        options.threads = args->threads;
        options.quiet = args->quiet;
        for (const auto& [flag, value] :
             {std::pair{"--data-dir", &args->data_dir}, std::pair{"--cache-dir", &args->cache_dir},
              std::pair{"--tokenizer", &args->tokenizer}}) {
            if (!value->empty()) {
                options.train_args.emplace_back(flag);
                options.train_args.push_back(std::filesystem::absolute(*value).string());
            }
        }
        for (const std::string& a : energy_options_args(args->energy))
            options.train_args.push_back(a);
        if (!args->quiet) {
            std::fprintf(stderr, "greenmoe sweep: %zu runs (%zu settings × %zu seeds) from %s\n",
                         plan.runs.size(), plan.runs.size() / plan.seeds.size(), plan.seeds.size(),
                         plan.base.c_str());
        }
        if (args->estimate) {
            const sweep::GridEstimate e = sweep::estimate_sweep(plan, options, args->probe_steps);
            std::fputs(sweep::estimate_table(e).c_str(), stdout);
            return;
        }
        const sweep::SweepOutcome outcome = sweep::run_sweep(plan, options);
        if (!args->quiet) {
            std::fprintf(stderr,
                         "greenmoe sweep: %d of %zu runs done, %d failed, %d unfinished in this "
                         "%.0f s; all runs so far: %.4g kWh, %.4g gCO2e\n",
                         outcome.done, plan.runs.size(), outcome.failed, outcome.unfinished,
                         outcome.seconds, outcome.energy_j / 3.6e6, outcome.co2e_g);
        }
        if (outcome.stop_signal != 0) throw CLI::RuntimeError(128 + outcome.stop_signal);
        if (outcome.done > 0) summarize(args->out, "");
        check(outcome.failed == 0, "sweep: {} of {} runs failed (their errors are in {})",
              outcome.failed, plan.runs.size(),
              (std::filesystem::path(args->out) / "sweep.json").string());
    });
}

}  // namespace greenmoe::cli

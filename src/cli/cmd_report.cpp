// `greenmoe report`: a self-contained report.html on one or several training runs, or on a
// `greenmoe sweep` folder.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "greenmoe/bench/bench_results.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/output_paths.h"
#include "greenmoe/report/html_report.h"
#include "greenmoe/report/models_view.h"
#include "greenmoe/report/run_data.h"
#include "greenmoe/report/sweep_view.h"

namespace greenmoe::cli {
namespace {

// An eval --json result goes to the run whose checkpoint it evaluated; with one run, to it.
void add_eval_file(std::vector<report::RunData>& runs, const std::string& file) {
    const auto result = nlohmann::json::parse(read_file(file), nullptr, false);
    usage_check(result.is_object(), "--eval {}: not the JSON object greenmoe eval --json writes",
                file);
    const std::string task = result.value("task", std::string());
    usage_check(task == "hellaswag",
                "--eval {}: a '{}' result; the report takes HellaSwag results (greenmoe eval "
                "--task hellaswag --json FILE)",
                file, task);
    report::RunData* target = nullptr;
    for (auto& run : runs) {
        if (report::eval_result_belongs_to(run, result)) target = &run;
    }
    if (target == nullptr && runs.size() == 1) target = &runs.front();
    usage_check(target != nullptr,
                "--eval {}: it evaluated {}, which is in none of the run folders given; put it "
                "in its run's folder as eval*.json, or report on that run",
                file, result.value("model_absolute", result.value("model", std::string("?"))));
    report::add_eval_result(*target, result, file);
}

// The models view: every bench row of the folders or files given, with the eval results found
// beside each model and those given with --eval.
void write_models_view(const std::vector<std::string>& sources,
                       const std::vector<std::string>& evals, int batch, std::string out,
                       const std::string& title, bool quiet) {
    std::vector<BenchRow> rows;
    for (const auto& source : sources) {
        const auto more = read_bench_rows(source);
        rows.insert(rows.end(), more.begin(), more.end());
    }
    const std::vector<std::filesystem::path> eval_files(evals.begin(), evals.end());
    const report::ModelsView view = report::build_models_view(rows, batch, eval_files);
    if (out.empty()) out = "models.html";
    check_output_file(out, "-o");
    write_file_atomic(out, report::render_models_html(
                               view, title.empty() ? "greenmoe models: cost and quality" : title));
    if (!quiet)
        std::printf("report: %zu model%s at batch size %d -> %s\n", view.models.size(),
                    view.models.size() == 1 ? "" : "s", view.batch, out.c_str());
}

// The sweep view of a `greenmoe sweep` folder (default -o: DIR/report.html).
void write_sweep_view(const std::string& dir, std::string out, const std::string& title,
                      bool quiet) {
    if (out.empty()) out = (std::filesystem::path(dir) / "report.html").string();
    check_output_file(out, "-o");
    const report::SweepReport view = report::build_sweep_report(dir, title);
    for (const auto& w : view.warnings) std::fprintf(stderr, "greenmoe: warning: %s\n", w.c_str());
    write_file_atomic(out, view.html);
    if (!quiet)
        std::printf("report: sweep of %zu setting%s, %zu run%s done, %zu failed -> %s\n",
                    view.settings, view.settings == 1 ? "" : "s", view.runs_done,
                    view.runs_done == 1 ? "" : "s", view.runs_failed, out.c_str());
}

}  // namespace

void register_report(CLI::App& app) {
    struct Args {
        std::vector<std::string> runs, evals, models;
        std::string out, title;
        int snapshots = 6;
        int batch = 0;
        bool quiet = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "report",
        "Write report.html on training runs: config, losses, HellaSwag, throughput, energy and "
        "CO2e, expert load, and (for several runs) HellaSwag accuracy against CO2e. One file, "
        "no network needed to view it.");
    cmd->add_option("runs", args->runs,
                    "run folders (the --out folders of greenmoe train), or one greenmoe sweep "
                    "folder (holding sweep.json): its settings with means and 95 % CIs over "
                    "seeds, Figure 1 with error bars and the Pareto front, and every run's loss "
                    "(default -o: SWEEP/report.html)");
    cmd->add_option("--models", args->models,
                    "instead of runs: the models view of greenmoe bench results (its --out "
                    "folders or bench.jsonl files): a table of every model with its cost and the "
                    "accuracy of MODEL/eval*.json, and Pareto plots (default -o: models.html)")
        ->check(CLI::ExistingPath);
    cmd->add_option("--batch", args->batch,
                    "with --models: the batch size to show (default: the smallest measured)")
        ->check(positive_count());
    cmd->add_option("-o,--out", args->out,
                    "output file (default: RUN/report.html for one run, ./report.html for "
                    "several)");
    cmd->add_option("--eval", args->evals,
                    "greenmoe eval --task hellaswag --json results to add, each to the run whose "
                    "checkpoint it evaluated (RUN/eval*.json files are read without it); with "
                    "--models, any eval --json result, to the model it evaluated")
        ->check(CLI::ExistingFile);
    cmd->add_option("--title", args->title, "page title");
    cmd->add_option("--snapshots", args->snapshots,
                    "expert-load maps over time per MoE run (0 = only the last step)")
        ->check(in_range(0, 24))
        ->capture_default_str();
    cmd->add_flag("-q,--quiet", args->quiet, "print nothing on success");
    cmd->callback([args]() {
        if (!args->out.empty()) check_output_file(args->out, "-o");
        usage_check(args->runs.empty() || args->models.empty(),
                    "give run folders or --models bench results, not both");
        if (!args->models.empty()) {
            write_models_view(args->models, args->evals, args->batch, args->out, args->title,
                              args->quiet);
            return;
        }
        usage_check(args->batch == 0, "--batch goes with --models");
        usage_check(!args->runs.empty(),
                    "give the run folders to report on (or --models with greenmoe bench results)");
        for (const auto& folder : args->runs) {
            usage_check(!report::is_sweep_folder(folder) || args->runs.size() == 1,
                        "{} is a sweep folder (it holds sweep.json): report on it alone", folder);
        }
        if (report::is_sweep_folder(args->runs[0])) {
            usage_check(args->evals.empty(),
                        "--eval goes with run folders; a sweep's runs read their own "
                        "RUN/eval*.json files");
            write_sweep_view(args->runs[0], args->out, args->title, args->quiet);
            return;
        }
        std::vector<report::RunData> runs;
        for (const auto& folder : args->runs) {
            runs.push_back(report::read_run(folder));
            for (const auto& w : runs.back().warnings)
                std::fprintf(stderr, "greenmoe: warning: %s\n", w.c_str());
        }
        for (const auto& file : args->evals) add_eval_file(runs, file);
        std::filesystem::path out = args->out;
        if (out.empty())
            out = runs.size() == 1 ? std::filesystem::path(args->runs[0]) / "report.html"
                                   : std::filesystem::path("report.html");
        check_output_file(out, "-o");
        report::ReportOptions options;
        if (!args->title.empty()) options.title = args->title;
        options.load_snapshots = args->snapshots;
        report::write_report_html(runs, out, options);
        if (!args->quiet)
            std::printf("report: %zu run%s -> %s\n", runs.size(), runs.size() == 1 ? "" : "s",
                        out.string().c_str());
    });
}

}  // namespace greenmoe::cli

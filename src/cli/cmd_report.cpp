// `greenmoe report`: a self-contained report.html on one or several training runs.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/output_paths.h"
#include "greenmoe/report/html_report.h"
#include "greenmoe/report/run_data.h"

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

}  // namespace

void register_report(CLI::App& app) {
    struct Args {
        std::vector<std::string> runs, evals;
        std::string out, title;
        int snapshots = 6;
        bool quiet = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "report",
        "Write report.html on training runs: config, losses, HellaSwag, throughput, energy and "
        "CO2e, expert load, and (for several runs) HellaSwag accuracy against CO2e. One file, "
        "no network needed to view it.");
    cmd->add_option("runs", args->runs, "run folders (the --out folders of greenmoe train)")
        ->required();
    cmd->add_option("-o,--out", args->out,
                    "output file (default: RUN/report.html for one run, ./report.html for "
                    "several)");
    cmd->add_option("--eval", args->evals,
                    "greenmoe eval --task hellaswag --json results to add, each to the run whose "
                    "checkpoint it evaluated (RUN/eval*.json files are read without it)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--title", args->title, "page title");
    cmd->add_option("--snapshots", args->snapshots,
                    "expert-load maps over time per MoE run (0 = only the last step)")
        ->check(in_range(0, 24))
        ->capture_default_str();
    cmd->add_flag("-q,--quiet", args->quiet, "print nothing on success");
    cmd->callback([args]() {
        if (!args->out.empty()) check_output_file(args->out, "-o");
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

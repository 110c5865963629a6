// `greenmoe bench`: what a model costs to run — latency, throughput, energy per token, peak
// memory and size — for original and pruned models under one fixed protocol.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "greenmoe/bench/bench_results.h"
#include "greenmoe/bench/bench_suite.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/energy/emissions_csv.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/output_paths.h"

namespace greenmoe::cli {
namespace {

namespace fs = std::filesystem;

struct BenchArgs {
    BenchSuite suite;
    std::string prompts_file, out = "bench-results";
    bool quiet = false;
    EnergyOptions energy;
};

// One prompt per non-blank line.
std::vector<std::string> read_prompts(const std::string& file) {
    const std::string text = read_file(file);
    std::vector<std::string> prompts;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") != std::string::npos) prompts.push_back(line);
        start = end + 1;
    }
    usage_check(!prompts.empty(), "--prompts {}: no prompts (one per non-blank line expected)",
                file);
    return prompts;
}

std::string row_line(const BenchRow& r) {
    if (!r.ok) return fmt::format("{} batch {}: FAILED: {}", r.model, r.batch, r.error);
    std::string line = fmt::format(
        "{} batch {}: TTFT {:.2f} ms, ITL {:.2f} ms (p50 {:.2f}, p90 {:.2f}), prefill {:.1f} "
        "tok/s, decode {:.1f} tok/s",
        r.model, r.batch, r.ttft_s * 1e3, r.itl_mean_s * 1e3, r.itl_p50_s * 1e3, r.itl_p90_s * 1e3,
        r.prefill_tokens_per_s, r.decode_tokens_per_s);
    if (!r.energy_source.empty())
        line += fmt::format(", {:.4g} J/token, {:.1f} W ({})", r.j_per_token, r.average_power_w,
                            r.energy_measured ? "measured" : "estimated");
    line += fmt::format(", peak RSS {:.2f} GiB", r.peak_rss_bytes / (1024.0 * 1024.0 * 1024.0));
    if (r.stable && !*r.stable) line += " [UNSTABLE: repeats vary more than the threshold]";
    return line;
}

void run(const BenchArgs& args) {
    usage_check(!args.suite.models.empty() || !args.suite.baseline.empty(),
                "give the models to measure with --model DIR (repeat it for several)");
    check_output_folder(args.out, "--out");
    BenchSuite suite = args.suite;
    if (!args.prompts_file.empty()) suite.protocol.prompts = read_prompts(args.prompts_file);
    for (const int b : suite.protocol.batches)
        usage_check(b >= 1, "--batch: sizes must be ≥ 1, got {}", b);

    EnergyMonitor monitor(args.energy);
    BenchMeters meters;
    if (monitor.enabled()) meters.energy = &monitor;

    fs::create_directories(args.out);
    const EmissionsCsv emissions(fs::path(args.out) / "emissions.csv");
    auto progress = [&](const std::string& what) {
        if (!args.quiet) std::fprintf(stderr, "bench: %s\n", what.c_str());
    };
    auto on_row = [&](const BenchRow& row) { std::printf("%s\n", row_line(row).c_str()); };
    const BenchOutcome outcome = run_bench_suite(suite, meters, progress, on_row);

    for (size_t i = 0; i < outcome.rows.size(); ++i) {
        const BenchRow& row = outcome.rows[i];
        if (!row.ok || !meters.energy) continue;
        EmissionsRow e = monitor.emissions_row(outcome.energy[i]);
        // Which model and batch size the row measured, in CodeCarbon's free-text column.
        e.experiment_id = fmt::format("bench {} batch {}", row.model, row.batch);
        emissions.append(e);
    }
    std::string jsonl;
    for (const BenchRow& row : outcome.rows) jsonl += bench_row_json(row).dump() + "\n";
    write_file_atomic(fs::path(args.out) / "bench.jsonl", jsonl);
    write_file_atomic(fs::path(args.out) / "bench.csv", bench_csv(outcome.rows));

    size_t failed = 0;
    for (const BenchRow& row : outcome.rows) failed += row.ok ? 0 : 1;
    if (!args.quiet)
        std::printf("bench: %zu rows -> %s/bench.jsonl, bench.csv%s\n", outcome.rows.size(),
                    args.out.c_str(), meters.energy ? ", emissions.csv" : "");
    check(failed == 0, "{} of {} rows failed (their errors are in {}/bench.jsonl)", failed,
          outcome.rows.size(), args.out);
}

}  // namespace

void register_bench(CLI::App& app) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand(
        "bench",
        "Measure what models cost to run under one fixed protocol: time to first token, "
        "inter-token latency, prefill and decode tokens/s, energy per token and per response "
        "(measured by RAPL/NVML or estimated, labelled which), CO2e, peak memory and parameters, "
        "with reductions against a baseline. Decoding is greedy and always makes exactly "
        "--new-tokens tokens per sequence (it does not stop at an end-of-text token), so every "
        "model does the same work. Writes OUT/bench.jsonl, OUT/bench.csv and OUT/emissions.csv.");
    cmd->add_option("--model", args->suite.models,
                    "a model folder to measure (Hugging Face folder with tokenizer.json, a pruned "
                    "one from greenmoe simplify, a greenmoe run/checkpoint, or a PEFT adapter or "
                    "LoRA run, measured on the base its adapter names); repeat for several")
        ->take_all();
    cmd->add_option("--baseline", args->suite.baseline,
                    "the original model: measured first, and every other row reports its "
                    "reductions against it (in percent)");
    cmd->add_option("--prompts", args->prompts_file,
                    "prompt file, one prompt per non-blank line (default: 8 built-in prompts)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--prompt-tokens", args->suite.protocol.prompt_tokens,
                    "prompt length in tokens: each prompt is cut to it, or repeated until it is "
                    "that long")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--new-tokens", args->suite.protocol.new_tokens,
                    "tokens generated per sequence, exactly (greedy; no stop at EOS)")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--batch", args->suite.protocol.batches,
                    "batch sizes (sequences decoded together), e.g. 1,4; sequence s takes prompt "
                    "s mod the number of prompts")
        ->delimiter(',')
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--warmup", args->suite.protocol.warmup,
                    "unmeasured runs before the measured ones, per model and batch size")
        ->check(at_least(0))
        ->capture_default_str();
    cmd->add_option("--repeats", args->suite.protocol.repeats,
                    "measured runs per model and batch size (figures are their means)")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--cv-threshold", args->suite.protocol.cv_threshold,
                    "a row is flagged unstable when its repeats' coefficient of variation (run "
                    "time or energy) exceeds this")
        ->check(above(0))
        ->capture_default_str();
    cmd->add_option("--idle-seconds", args->suite.idle_seconds,
                    "seconds of idle power read before the first model, reported where a "
                    "hardware counter (RAPL/NVML) measures it (0 = none)")
        ->check(at_least(0))
        ->capture_default_str();
    cmd->add_option("--tokenizer", args->suite.tokenizer,
                    "tokenizer for models without their own: GPT-2 BPE folder for greenmoe "
                    "models, tokenizer.json or its folder for Hugging Face ones");
    cmd->add_option("-o,--out", args->out,
                    "output folder for bench.jsonl, bench.csv and emissions.csv (rows appended)")
        ->capture_default_str();
    cmd->add_flag("-q,--quiet", args->quiet, "no progress lines on stderr");
    add_energy_options(cmd, args->energy);
    cmd->callback([args]() { run(*args); });
}

}  // namespace greenmoe::cli

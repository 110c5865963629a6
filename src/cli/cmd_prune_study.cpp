// `greenmoe prune-study`: pruning criteria side by side on one model, budgets and tasks.
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/eval/harness_tasks.h"
#include "greenmoe/moeits/prune_study.h"

namespace greenmoe::cli {

namespace {

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    size_t at = 0;
    while (at <= text.size()) {
        const size_t comma = std::min(text.find(',', at), text.size());
        if (comma > at) out.push_back(text.substr(at, comma - at));
        at = comma + 1;
    }
    return out;
}

std::vector<double> parse_budgets(const std::string& text) {
    std::vector<double> out;
    for (const auto& item : split_list(text)) {
        size_t used = 0;
        double v = 0.0;
        try {
            v = std::stod(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        usage_check(used == item.size() && v > 0.0 && v < 100.0,
                    "--reduce: '{}' is not a percentage in (0, 100) (e.g. --reduce 25,50)", item);
        out.push_back(v);
    }
    usage_check(!out.empty(), "--reduce: give budgets, e.g. --reduce 25,50");
    return out;
}

}  // namespace

void register_prune_study(CLI::App& app) {
    struct Args {
        std::string model, out, criteria = "moeits,reap,naee,frequency,random", reduce = "25,50";
        std::string tasks, data_dir, calibration_data;
        int64_t calibration_tokens = 16384, limit = 0;
        int calibration_length = 0, num_fewshot = 0;
        int bench_prompt = 32, bench_new = 32, bench_repeats = 3;
        bool no_bench = false;
        uint64_t seed = 0;
        bool quiet = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "prune-study",
        "Prune one model with several criteria at several budgets, evaluate every pruned model "
        "(and the unpruned one) on the same tasks and with the inference benchmark (time to "
        "first token, decode tokens/s, as `greenmoe bench` measures them), and write study.csv, "
        "study.md and "
        "accuracy_vs_pruning.svg to OUT. Each finished model's result.json is kept: a stopped "
        "study resumes where it stopped and redoes nothing that finished.");
    cmd->add_option("--model", args->model,
                    "the model to prune (Hugging Face folder or greenmoe "
                    "checkpoint)")
        ->required();
    cmd->add_option("--out", args->out, "study folder (an earlier study there is resumed)")
        ->required();
    cmd->add_option("--criteria", args->criteria,
                    "comma-separated: moeits, random, router-norm, frequency, ean, reap, naee")
        ->capture_default_str();
    cmd->add_option("--reduce", args->reduce,
                    "comma-separated budgets: % of expert parameters removed")
        ->capture_default_str();
    cmd->add_option("--tasks", args->tasks, "comma-separated benchmark tasks (as `eval --task`)")
        ->required();
    cmd->add_option("--data-dir", args->data_dir, "folder with datasets (default: $GREENMOE_DATA)");
    cmd->add_option("--num-fewshot", args->num_fewshot, "examples before each question")
        ->capture_default_str();
    cmd->add_option("--limit", args->limit, "evaluate only the first N documents of each task");
    cmd->add_option("--calibration-data", args->calibration_data,
                    "token shards for frequency, ean, reap and naee");
    cmd->add_option("--calibration-tokens", args->calibration_tokens, "calibration tokens to route")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--calibration-length", args->calibration_length,
                    "tokens per calibration sequence (default 256 or the model's maximum)")
        ->check(positive_count());
    cmd->add_option("--seed", args->seed, "seed of the random criterion")->capture_default_str();
    cmd->add_option("--bench-prompt-tokens", args->bench_prompt,
                    "inference benchmark: prompt tokens per sequence")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--bench-new-tokens", args->bench_new,
                    "inference benchmark: generated tokens per sequence")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--bench-repeats", args->bench_repeats, "inference benchmark: measured runs")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_flag("--no-bench", args->no_bench, "skip the inference benchmark");
    cmd->add_flag("-q,--quiet", args->quiet, "no progress bars");
    cmd->callback([args]() {
        moeits::PruneStudyOptions o;
        o.model = args->model;
        o.out = args->out;
        for (const auto& name : split_list(args->criteria)) {
            o.criteria.push_back(moeits::parse_criterion(name));
        }
        o.reduce_percents = parse_budgets(args->reduce);
        o.tasks = parse_task_list(args->tasks);
        o.task_options.data_dir = args->data_dir;
        o.task_options.num_fewshot = args->num_fewshot;
        o.task_options.limit = args->limit;
        o.calibration_data = args->calibration_data;
        o.calibration_tokens = args->calibration_tokens;
        o.calibration_sequence_length = args->calibration_length;
        o.seed = args->seed;
        o.benchmark = !args->no_bench;
        o.bench_prompt_tokens = args->bench_prompt;
        o.bench_new_tokens = args->bench_new;
        o.bench_repeats = args->bench_repeats;
        o.show_progress = !args->quiet;
        moeits::run_prune_study(o);
    });
}

}  // namespace greenmoe::cli

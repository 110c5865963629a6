// `greenmoe eval`: HellaSwag accuracy, validation loss or perplexity of a greenmoe checkpoint or
// a Hugging Face model folder.
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/eval/harness_tasks.h"
#include "greenmoe/eval/hellaswag.h"
#include "greenmoe/eval/hellaswag_files.h"
#include "greenmoe/eval/hf_hellaswag.h"
#include "greenmoe/eval/hf_perplexity.h"
#include "greenmoe/eval/hf_text.h"
#include "greenmoe/eval/language_model.h"
#include "greenmoe/eval/perplexity_data.h"
#include "greenmoe/eval/val_loss.h"
#include "greenmoe/hf/lora_adapter.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/output_paths.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/text/tokenizer_files.h"
#include "greenmoe/train/checkpoint.h"
#include "greenmoe/train/datasets.h"
#include "greenmoe/train/train_config.h"

namespace greenmoe::cli {

namespace {

struct EvalArgs {
    std::string checkpoint, model, adapter, task = "hellaswag", data, data_dir, cache_dir,
                                            tokenizer, json_out;
    std::string val_data;
    int64_t limit = 0, val_tokens = 0;
    int batch_items = 16, batch_size = 8, context = 0, stride = 0, num_fewshot = -1;
    int64_t batch_tokens = 1024;
    uint64_t fewshot_seed = 1234;
    std::string log_samples;
    bool quiet = false;
    EnergyOptions energy;
};

hf::Tokenizer load_hf_tokenizer(const EvalArgs& args) {
    return hf::Tokenizer::load(args.tokenizer.empty() ? args.model : args.tokenizer);
}

nlohmann::json run_hellaswag(const EvalArgs& args, bool hf_model) {
    DataLocations given;
    given.data_dir = args.data_dir;
    given.cache_dir = args.cache_dir;
    const DataLocations where = resolve_data_locations(given);
    const auto file = find_or_fetch_hellaswag(args.data, where);
    const auto items = read_hellaswag(file, static_cast<size_t>(args.limit));
    check(!items.empty(), "{}: no HellaSwag items", file.string());
    HellaSwagOptions options;
    options.items_per_batch = args.batch_items;
    options.progress = !args.quiet;
    HellaSwagResult r;
    if (hf_model) {
        const hf::HfModel model = hf::HfModel::load_with_adapter(args.model, args.adapter);
        r = evaluate_hellaswag_hf(model, load_hf_tokenizer(args), items, options);
    } else {
        const auto model = load_model(args.checkpoint, 1, 1);
        const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::load(find_tokenizer_dir(args.tokenizer));
        r = evaluate_hellaswag(*model, tokenizer, items, options);
    }
    std::printf(
        "hellaswag: %lld items from %s | completion acc %.4f acc_norm %.4f | harness acc %.4f "
        "acc_norm %.4f | %.1f s (%.1f items/s)%s\n",
        static_cast<long long>(r.items), file.filename().c_str(), r.acc(), r.acc_norm(),
        r.harness_acc(), r.harness_acc_norm(), r.seconds, r.items / std::max(r.seconds, 1e-9),
        r.truncated > 0 ? fmt::format(" | {} contexts cut to fit block_size", r.truncated).c_str()
                        : "");
    return {{"task", "hellaswag"},
            {"file", file.string()},
            {"items", r.items},
            {"acc", r.acc()},
            {"acc_norm", r.acc_norm()},
            {"harness_acc", r.harness_acc()},
            {"harness_acc_norm", r.harness_acc_norm()},
            {"truncated", r.truncated},
            {"seconds", r.seconds}};
}

nlohmann::json run_perplexity(const EvalArgs& args, bool hf_model) {
    usage_check(hf_model,
                "--task perplexity: {} is not a Hugging Face model folder (config.json with a "
                "model_type the engine runs); for greenmoe checkpoints use --task val-loss",
                args.model);
    usage_check(!args.data.empty(), "--task perplexity needs --data FILE (text or token shard)");
    const hf::HfModel model = hf::HfModel::load_with_adapter(args.model, args.adapter);
    const std::vector<int32_t> tokens = read_perplexity_tokens(args.data, load_hf_tokenizer(args));
    PerplexityOptions options;
    options.context = args.context;
    options.stride = args.stride;
    options.progress = !args.quiet;
    const PerplexityResult r = evaluate_perplexity(model, tokens, options);
    std::printf(
        "perplexity: %.6g (mean NLL %.6f) over %lld tokens of %s | %lld windows of %d, stride %d "
        "| %.1f s\n",
        r.perplexity(), r.mean_nll(), static_cast<long long>(r.tokens), args.data.c_str(),
        static_cast<long long>(r.windows), r.context, r.stride, r.seconds);
    return {{"task", "perplexity"},     {"data", args.data},  {"perplexity", r.perplexity()},
            {"mean_nll", r.mean_nll()}, {"tokens", r.tokens}, {"windows", r.windows},
            {"context", r.context},     {"stride", r.stride}, {"seconds", r.seconds}};
}

nlohmann::json run_val_loss(const EvalArgs& args) {
    namespace fs = std::filesystem;
    // The run's own settings when the checkpoint has them (state.json), else the options.
    std::string pattern = args.val_data;
    int T = 0;
    int64_t tokens = args.val_tokens;
    fs::path weights = resolve_checkpoint_weights(args.checkpoint);
    // A `simplify` output has no run of its own: its summary names the model it came from,
    // whose run's validation data lets the pruned model be compared with the original.
    for (int hops = 0; hops < 8 && !fs::is_regular_file(weights.parent_path() / "state.json");
         ++hops) {
        const fs::path summary = weights.parent_path() / "summary.json";
        if (!fs::is_regular_file(summary)) break;
        const auto j = nlohmann::json::parse(read_file(summary), nullptr, false);
        if (!j.is_object() || !j.contains("model_absolute")) break;
        const fs::path source = j["model_absolute"].get<std::string>();
        if (!fs::exists(source)) break;
        weights = resolve_checkpoint_weights(source);
    }
    const fs::path state = weights.parent_path() / "state.json";
    if (fs::is_regular_file(state)) {
        const TrainConfig config =
            train_config_from_json(read_train_state(weights.parent_path()).config);
        T = config.seq_len;
        if (tokens <= 0) tokens = config.val_tokens;
        if (pattern.empty()) pattern = config.val_data;
        if (pattern.empty()) {
            DataLocations given;
            given.data_dir = args.data_dir;
            given.cache_dir = args.cache_dir;
            given.tokenizer_dir = args.tokenizer;
            pattern = prepare_named_dataset(config.dataset, resolve_data_locations(given)).val;
        }
    }
    check(!pattern.empty(),
          "--task val-loss: {} has no training state to take the validation data from; pass "
          "--val-data <shard pattern>",
          args.checkpoint);
    if (tokens <= 0) tokens = 32768;
    auto model = load_model(args.checkpoint, args.batch_size, T);
    if (T == 0) T = model->config().block_size;
    ValidationSet set(pattern, T, tokens);
    const double loss = validation_loss(*model, set);
    std::printf("val-loss: %.6f over %lld tokens (%zu sequences of %d) from %s\n", loss,
                static_cast<long long>(set.num_tokens()), set.num_sequences(), T, pattern.c_str());
    return {{"task", "val-loss"},
            {"val_loss", loss},
            {"val_tokens", set.num_tokens()},
            {"seq_len", T},
            {"data", pattern}};
}

// What was evaluated, so that `greenmoe report` can put the result beside its run: the
// model as given and absolute, and for a greenmoe checkpoint its weights and training step.
void describe_evaluated_model(const EvalArgs& args, bool hf_model, nlohmann::json& result) {
    namespace fs = std::filesystem;
    result["model"] = args.model;
    result["model_absolute"] = fs::absolute(args.model).lexically_normal().string();
    if (!args.adapter.empty()) {
        result["adapter"] = args.adapter;
        result["adapter_absolute"] = fs::absolute(args.adapter).lexically_normal().string();
    }
    if (hf_model) return;
    try {
        const fs::path weights = resolve_checkpoint_weights(args.checkpoint);
        result["weights"] = fs::absolute(weights).lexically_normal().string();
        if (fs::is_regular_file(weights.parent_path() / "state.json"))
            result["step"] = read_train_state(weights.parent_path()).step;
    } catch (const Error&) {
        // A Hugging Face GPT-2 folder: no greenmoe checkpoint, no step.
    }
}

// Benchmark tasks (lm-evaluation-harness's), unless the task is one of the three greenmoe
// evaluations: HellaSwag in both styles stays greenmoe's own unless few-shot is asked for.
bool is_harness_run(const EvalArgs& args) {
    if (args.task == "val-loss" || args.task == "perplexity") return false;
    if (args.task == "hellaswag" && args.num_fewshot < 0) return false;
    return true;
}

nlohmann::json run_benchmark_tasks(const EvalArgs& args) {
    const std::vector<std::string> names = parse_task_list(args.task);
    HarnessRunOptions options;
    options.tasks.num_fewshot = std::max(0, args.num_fewshot);
    options.tasks.seed = args.fewshot_seed;
    options.tasks.limit = args.limit;
    options.tasks.data_dir = args.data_dir;
    options.tasks.cache_dir = resolve_data_locations({"", args.cache_dir, ""}).cache_dir;
    options.progress = !args.quiet;
    options.log_samples = args.log_samples;
    options.batch_tokens = args.batch_tokens;
    const auto model = open_language_model(args.model, args.tokenizer, args.adapter);
    return run_harness_tasks(*model, names, options);
}

}  // namespace

void register_eval(CLI::App& app) {
    auto args = std::make_shared<EvalArgs>();
    CLI::App* cmd = app.add_subcommand(
        "eval",
        "Evaluate a model: HellaSwag accuracy (completion style as nanoGPT/llm.c, and "
        "lm-evaluation-harness style, both reported), the validation loss, or the perplexity "
        "of a text.");
    cmd->add_option("--model", args->model,
                    "a Hugging Face model folder (config.json, safetensors weights and its "
                    "tokenizer.json), or anything --checkpoint takes");
    cmd->add_option("--checkpoint", args->checkpoint,
                    "run folder, checkpoint folder, greenmoe model.safetensors, or a Hugging Face "
                    "GPT-2 folder");
    cmd->add_option("--adapter", args->adapter,
                    "a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) "
                    "merged into the --model Hugging Face model");
    cmd->add_option(
           "--task", args->task,
           "hellaswag (both styles), val-loss (greenmoe models), perplexity (Hugging Face "
           "models), or benchmark tasks as lm-evaluation-harness 0.4 builds and scores them, "
           "comma-separated: arc_easy, arc_challenge, boolq, winogrande, hellaswag, piqa, "
           "openbookqa, rte, mmlu (or mmlu_<subject>), lambada_openai")
        ->capture_default_str();
    cmd->add_option("--num-fewshot", args->num_fewshot,
                    "few-shot examples per prompt for benchmark tasks, picked as the harness "
                    "picks them (default 0; --task hellaswag with it runs the harness task)")
        ->check(in_range(0, 1000));
    cmd->add_option("--fewshot-seed", args->fewshot_seed,
                    "seed of the few-shot choice (the harness's default 1234)")
        ->capture_default_str();
    cmd->add_option("--log-samples", args->log_samples,
                    "benchmark tasks: write one JSON line per document (requests, "
                    "log-likelihoods, prediction) to FILE");
    cmd->add_option("--limit", args->limit,
                    "score only the first N items (per MMLU subject; default: all of them)")
        ->check(positive_count());
    cmd->add_option("--data", args->data,
                    "HellaSwag file (raw hellaswag_val.jsonl, llama.cpp's 6-line "
                    "hellaswag_val_full.txt[.bz2] or the hub's Parquet) or a folder holding one; "
                    "default: the data "
                    "folder, the cache, then a download of the public jsonl. --task perplexity: "
                    "a text file, or an llm.c .bin / .npy token shard");
    cmd->add_option("--context", args->context,
                    "perplexity window in tokens (default: max_position_embeddings)")
        ->check(in_range(2, 1 << 30));
    cmd->add_option("--stride", args->stride,
                    "perplexity window step (default: the window, no overlap)")
        ->check(positive_count());
    cmd->add_option("--data-dir", args->data_dir,
                    "folder with datasets: original releases or the Hugging Face hub's Parquet "
                    "copies (default: $GREENMOE_DATA); benchmark tasks found in none are "
                    "downloaded from the hub ($HF_ENDPOINT) into the cache, checked against "
                    "the hub's SHA-256, unless HF_HUB_OFFLINE=1");
    cmd->add_option(
        "--cache-dir", args->cache_dir,
        "downloads and prepared shards (default: $GREENMOE_CACHE or ~/.cache/greenmoe)");
    cmd->add_option("--tokenizer", args->tokenizer,
                    "GPT-2 BPE folder (encoder.json, vocab.bpe) for greenmoe models; a "
                    "tokenizer.json or its folder for a Hugging Face model (default: the model's)");
    cmd->add_option("--batch-items", args->batch_items, "HellaSwag items scored together")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--batch-tokens", args->batch_tokens,
                    "--task runs: documents scored together until their requests hold this many "
                    "tokens (1: one at a time); the scores do not depend on it")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--val-data", args->val_data,
                    "validation shard pattern (default: the run's own validation data)");
    cmd->add_option("--val-tokens", args->val_tokens,
                    "validation tokens to score (default: the run's eval.val_tokens)")
        ->check(positive_count());
    cmd->add_option("--batch-size", args->batch_size, "sequences per forward for val-loss")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--json", args->json_out, "also write the result as JSON to this file");
    cmd->add_flag("-q,--quiet", args->quiet, "no progress bar");
    add_energy_options(cmd, args->energy);
    cmd->callback([args]() {
        usage_check(args->model.empty() != args->checkpoint.empty(),
                    "give the model with --model DIR (or --checkpoint), once");
        EvalArgs a = *args;
        if (!a.json_out.empty()) check_output_file(a.json_out, "--json");
        if (a.model.empty()) a.model = a.checkpoint;
        if (a.checkpoint.empty()) a.checkpoint = a.model;
        if (!a.log_samples.empty()) check_output_file(a.log_samples, "--log-samples");
        if (a.adapter.empty()) {
            // An adapter folder or a LoRA run runs on the base its adapter names.
            if (const auto found = hf::find_lora_adapter(a.model)) {
                a.adapter = found->string();
                a.model = hf::lora_adapter_base(*found).string();
            }
        }
        const bool hf_model = is_hf_engine_model(a.model);
        const bool harness = is_harness_run(a);
        usage_check(a.adapter.empty() || hf_model,
                    "--adapter {}: LoRA adapters apply to Hugging Face models; {} is a greenmoe "
                    "model",
                    a.adapter, a.model);
        usage_check(
            !hf_model || a.task != "val-loss",
            "--task val-loss: {} is a Hugging Face model; use --task perplexity --data FILE",
            a.model);
        EnergyMonitor energy(a.energy);
        energy.begin_window("eval");
        nlohmann::json result = harness                  ? run_benchmark_tasks(a)
                                : a.task == "hellaswag"  ? run_hellaswag(a, hf_model)
                                : a.task == "perplexity" ? run_perplexity(a, hf_model)
                                                         : run_val_loss(a);
        const EnergyMeasurement m = energy.end_window("eval");
        if (energy.enabled()) {
            std::fprintf(stderr, "%s\n", energy.summary_line(m).c_str());
            result["energy_j"] = m.total_joules_with_pue;  // and co2e_g: both incl. PUE
            result["pue"] = m.pue;
            result["co2e_g"] = m.co2e_g;
            result["energy_source"] = m.source_label;
        }
        if (!a.json_out.empty()) {
            describe_evaluated_model(a, hf_model, result);
            std::string text = result.dump(2);
            text += "\n";
            write_file_atomic(a.json_out, text);
        }
    });
}

}  // namespace greenmoe::cli

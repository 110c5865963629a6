// `greenmoe train`: train a model from a preset and overrides into a run folder, or LoRA
// adapters of a Hugging Face model on instruction data (--lora / --adapter).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/dist/communicator.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/eval/hf_text.h"
#include "greenmoe/hf/hf_config.h"
#include "greenmoe/hf/lora_adapter.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/output_paths.h"
#include "greenmoe/lora/lora_spec.h"
#include "greenmoe/lora/lora_trainer.h"
#include "greenmoe/train/trainer.h"

namespace greenmoe::cli {

namespace {

namespace fs = std::filesystem;

struct TrainArgs {
    std::string config, out, data_dir, cache_dir, tokenizer, init_from;
    std::vector<std::string> sets, resume_with_changes;
    bool no_resume = false, move_old_run = false, no_memory_check = false, quiet = false,
         shard_optimizer = false, no_overlap = false;
    int64_t stop_at = -1;
    double dist_timeout = 300.0;
    EnergyOptions energy;
    // LoRA runs.
    std::string lora, adapter, template_name = "instruction-response", loss_on = "all",
                               text_field = "text";
    std::vector<std::string> data;
    bool no_pack = false, merge = false;
};

// The options given on the command line that only one kind of run takes.
struct KindOptions {
    std::vector<CLI::Option*> full_only, lora_only;
};

// The first of `options` that was given, or null.
const CLI::Option* first_given(const std::vector<CLI::Option*>& options) {
    for (const CLI::Option* o : options) {
        if (o->count() > 0) return o;
    }
    return nullptr;
}

// --init-from of a LoRA run: a Hugging Face folder of a model_type the engine runs.
void check_lora_base(const std::string& init_from) {
    const fs::path path = init_from;
    usage_check(fs::exists(path), "--init-from {}: no such folder", init_from);
    if (is_hf_engine_model(path)) return;
    const fs::path config = path / "config.json";
    if (fs::is_regular_file(config)) {
        const auto j = nlohmann::json::parse(read_file(config), nullptr, false);
        if (j.is_object() && j.contains("model_type") && j["model_type"].is_string()) {
            usage_fail(
                "--init-from {}: LoRA trains Hugging Face models greenmoe's engine runs ({}); "
                "this one's model_type is '{}'",
                init_from, hf::supported_model_types(), j["model_type"].get<std::string>());
        }
    }
    usage_fail(
        "--init-from {}: LoRA is for Hugging Face models (a folder with config.json and "
        "safetensors); this is a greenmoe model: fine-tune it with full training (train "
        "--init-from {} without --lora)",
        init_from, init_from);
}

void run_lora(const TrainArgs& a, const KindOptions& kinds) {
    if (const CLI::Option* o = first_given(kinds.full_only)) {
        usage_fail("{} is for full training; LoRA runs (--lora, --adapter) do not take it",
                   o->get_name());
    }
    usage_check(Communicator::launcher_ranks() <= 1,
                "train --lora runs in one process; start it without mpirun");
    usage_check(a.lora.empty() || a.adapter.empty(),
                "--adapter {} trains that adapter further with its own r, alpha, dropout and "
                "targets (its adapter_config.json): drop --lora",
                a.adapter);
    usage_check(!a.init_from.empty() || !a.adapter.empty(),
                "train --lora: give the Hugging Face model to adapt with --init-from DIR");
    usage_check(!a.data.empty(),
                "train --lora: give the instruction data with --data FILE.jsonl (repeatable)");
    if (!a.init_from.empty()) check_lora_base(a.init_from);
    if (!a.adapter.empty()) {
        usage_check(hf::is_lora_adapter_folder(a.adapter),
                    "--adapter {}: not a PEFT adapter folder (adapter_config.json, "
                    "adapter_model.safetensors, no config.json)",
                    a.adapter);
    }
    const lora::LoraTrainConfig config = lora::load_lora_train_config(a.config, a.sets);
    check_output_folder(a.out, "--out");
    lora::LoraTrainOptions o;
    o.out_dir = a.out;
    o.base_model = a.init_from;
    o.tokenizer = a.tokenizer;
    if (!a.lora.empty()) o.spec = lora::parse_lora_spec(a.lora);
    o.adapter = a.adapter;
    o.data_files = a.data;
    o.data.template_name = a.template_name;
    o.data.loss_on = a.loss_on == "responses" ? lora::LossOn::Responses : lora::LossOn::All;
    o.data.text_field = a.text_field;
    o.data.pack = !a.no_pack;
    o.merge = a.merge;
    o.resume = !a.no_resume;
    o.move_old_run = a.move_old_run;
    o.resume_with_changes = a.resume_with_changes;
    o.stop_at_step = a.stop_at;
    o.quiet = a.quiet;
    o.energy = a.energy;
    const lora::LoraTrainSummary summary = lora::train_lora(config, o);
    // Stopped by SIGINT / SIGTERM after saving: the shell's convention, 128 + signal.
    if (summary.stop_signal != 0) throw CLI::RuntimeError(128 + summary.stop_signal);
}

void run_full(const TrainArgs& a, const KindOptions& kinds) {
    if (const CLI::Option* o = first_given(kinds.lora_only)) {
        usage_fail("{} is for LoRA runs: add --lora SPEC (new adapters) or --adapter DIR",
                   o->get_name());
    }
    usage_check(a.no_resume || !lora::is_lora_run(a.out),
                "{}: holds a LoRA run; resume it with the same --lora (or --adapter), "
                "--init-from and --data, or use another --out",
                a.out);
    const TrainConfig config = load_train_config(a.config, a.sets);
    check_output_folder(a.out, "--out");
    TrainOptions options;
    options.out_dir = a.out;
    options.data.data_dir = a.data_dir;
    options.data.cache_dir = a.cache_dir;
    options.data.tokenizer_dir = a.tokenizer;
    options.init_from = a.init_from;
    options.preset = a.config;
    for (const std::string& s : a.sets) {
        if (s.starts_with("model.")) options.model_keys_set.push_back(s.substr(6, s.find('=') - 6));
    }
    options.resume = !a.no_resume;
    options.move_old_run = a.move_old_run;
    options.resume_with_changes = a.resume_with_changes;
    options.check_memory = !a.no_memory_check;
    options.stop_at_step = a.stop_at;
    options.quiet = a.quiet;
    options.energy = a.energy;
    options.shard_optimizer = a.shard_optimizer;
    options.overlap_communication = !a.no_overlap;
    const auto comm = Communicator::from_environment(a.dist_timeout);
    options.comm = comm.get();
    TrainSummary summary;
    try {
        summary = train(config, options);
    } catch (const std::exception& e) {
        if (comm->size() == 1) throw;
        // The other ranks would wait for this one in their next collective: end them all.
        std::fprintf(stderr, "greenmoe: error: rank %d of %d: %s\n", comm->rank(), comm->size(),
                     e.what());
        comm->abort(1);
    }
    // Stopped by SIGINT / SIGTERM after saving: the shell's convention, 128 + signal.
    if (summary.stop_signal != 0) throw CLI::RuntimeError(128 + summary.stop_signal);
}

}  // namespace

void register_train(CLI::App& app) {
    auto args = std::make_shared<TrainArgs>();
    auto kinds = std::make_shared<KindOptions>();
    CLI::App* cmd = app.add_subcommand(
        "train",
        "Train a model. The run folder gets config.json, log.jsonl (one JSON object per "
        "step/eval/sample) and checkpoints/ (weights in safetensors, AdamW moments, state.json); "
        "a run folder that already has a checkpoint is resumed exactly. Started by an MPI "
        "launcher (mpirun -np N greenmoe train …) it trains data-parallel on N ranks with the "
        "same total batch. With --lora (or --adapter) it trains LoRA adapters of a Hugging Face "
        "model (--init-from DIR, frozen) on instruction data (--data FILE.jsonl), as MoEITS "
        "heals pruned models, and writes the PEFT adapter to OUT/adapter.");
    cmd->add_option("-c,--config", args->config,
                    "preset JSON (configs/nano.json, configs/small.json, configs/gpt2-124m.json); "
                    "for LoRA runs a file with train and checkpoint sections only")
        ->check(CLI::ExistingFile);
    cmd->add_option("-s,--set", args->sets,
                    "override a config value: section.key=value, e.g. --set train.lr=3e-4 "
                    "(sections: model, train, eval, checkpoint, data; LoRA runs: train, "
                    "checkpoint); repeatable");
    cmd->add_option("-o,--out", args->out, "run folder")->required();
    kinds->full_only.push_back(
        cmd->add_option("--data-dir", args->data_dir,
                        "folder holding datasets such as tinyshakespeare.txt (default: "
                        "$GREENMOE_DATA; otherwise the file is downloaded)"));
    kinds->full_only.push_back(
        cmd->add_option("--cache-dir", args->cache_dir,
                        "where downloads and prepared shards are kept (default: "
                        "$GREENMOE_CACHE or ~/.cache/greenmoe)"));
    cmd->add_option("--tokenizer", args->tokenizer,
                    "full training: folder with encoder.json and vocab.bpe; LoRA: the Hugging "
                    "Face tokenizer.json or its folder (default: the --init-from folder's)");
    cmd->add_option("--init-from", args->init_from,
                    "start from these weights and their model settings (the rest comes from the "
                    "preset): a greenmoe run, checkpoint or `simplify` output folder (healing a "
                    "pruned model), a greenmoe model.safetensors, or a Hugging Face GPT-2 "
                    "folder; --set model.* may change only routing and loss settings "
                    "(capacity factors, auxiliary weights, bias_gamma). parent.json in the run "
                    "folder records it, with its CO2e when its emissions.csv is there. With "
                    "--lora: the Hugging Face model folder to adapt (a model_type the engine "
                    "runs, e.g. a `simplify` output), memory-mapped and frozen");
    CLI::Option* no_resume =
        cmd->add_flag("--no-resume", args->no_resume,
                      "start from step 0; a run folder that holds an earlier run is refused "
                      "unless --move-old-run");
    cmd->add_flag("--move-old-run", args->move_old_run,
                  "with --no-resume: first move an earlier run in the folder to OUT.old-N")
        ->needs(no_resume);
    cmd->add_option("--resume-with-changes", args->resume_with_changes,
                    "settings that may differ from the checkpoint's when resuming "
                    "(section.key or a whole section, e.g. train.max_steps eval); without it, "
                    "any difference refuses to resume")
        ->expected(1, -1);
    kinds->full_only.push_back(
        cmd->add_flag("--no-memory-check", args->no_memory_check,
                      "train even when the configuration is estimated to need more memory "
                      "than the machine has"));
    cmd->add_option("--stop-at", args->stop_at,
                    "save a checkpoint and stop once this many steps are done (the run can be "
                    "resumed later)")
        ->check(positive_count());
    cmd->add_flag("-q,--quiet", args->quiet, "no progress lines on the console");
    kinds->full_only.push_back(
        cmd->add_flag("--shard-optimizer", args->shard_optimizer,
                      "under mpirun: each rank keeps the AdamW moments of its own share of "
                      "the parameters and updates only that share (ZeRO stage 1)"));
    kinds->full_only.push_back(
        cmd->add_flag("--no-overlap", args->no_overlap,
                      "under mpirun: sum the whole gradient after the backward pass instead "
                      "of each block's as soon as it is computed"));
    kinds->full_only.push_back(
        cmd->add_option("--dist-timeout", args->dist_timeout,
                        "under mpirun: seconds a rank waits for the others before ending the "
                        "job (a rank died or hangs); 0 waits forever")
            ->check(at_least(0))
            ->capture_default_str());

    // LoRA.
    kinds->lora_only.push_back(cmd->add_option(
        "--lora", args->lora,
        "train new LoRA adapters of the --init-from Hugging Face model: comma-separated "
        "r=RANK (default 8), alpha=ALPHA (lora_alpha, default r; the update is scaled by "
        "alpha/r), dropout=P (on the adapters' input, default 0), rslora=true (scale "
        "alpha/sqrt(r)) and targets=NAME[,NAME…] (last: every later item is a target), e.g. "
        "r=64,alpha=16,dropout=0.1,targets=q_proj,k_proj,v_proj,o_proj,gate,gate_proj,"
        "up_proj,down_proj. A target names linear modules as Hugging Face does, matching a "
        "module whose name is it or ends in .NAME: q_proj k_proj v_proj o_proj (attention), "
        "gate (the MoE router), gate_proj up_proj down_proj (the experts' and dense MLPs'), "
        "shared_expert, all-linear (every linear module of the blocks). Defaults of the "
        "training: lr 2e-4, cosine to 0 after 5 % warm-up, 500 steps, batch 4 × 512 "
        "tokens, AdamW 0.9/0.999, no weight decay, clipping at 1 (--set train.KEY=V)"));
    kinds->lora_only.push_back(
        cmd->add_option("--adapter", args->adapter,
                        "train this PEFT LoRA adapter folder further (its r, alpha, dropout and "
                        "targets) instead of new adapters; the base is --init-from, or the "
                        "adapter's base_model_name_or_path"));
    kinds->lora_only.push_back(
        cmd->add_option("--data", args->data,
                        "LoRA: instruction data, JSONL: {\"text\": …} per line, or "
                        "conversations as OpenHermes-2.5 has them ({\"conversations\": "
                        "[{\"from\": \"system\"|\"human\"|\"gpt\", \"value\": …}]}), or Alpaca "
                        "records ({\"instruction\", \"input\", \"output\"}); repeatable, read in "
                        "order; rows are shuffled per epoch from "
                        "train.seed"));
    kinds->lora_only.push_back(
        cmd->add_option("--template", args->template_name,
                        "LoRA: how conversations become text: instruction-response (the "
                        "MoEITS authors': \"Instruction:\\n…\\n\\nResponse:\\n…\") or chatml")
            ->check(CLI::IsMember(lora::instruction_template_names()))
            ->capture_default_str());
    kinds->lora_only.push_back(
        cmd->add_option("--loss-on", args->loss_on,
                        "LoRA: the tokens that carry loss: all, or responses (the assistant's "
                        "turns only; plain text counts as a response)")
            ->check(CLI::IsMember({"all", "responses"}))
            ->capture_default_str());
    kinds->lora_only.push_back(
        cmd->add_option("--text-field", args->text_field, "LoRA: the field of plain-text records")
            ->capture_default_str());
    kinds->lora_only.push_back(
        cmd->add_flag("--no-pack", args->no_pack,
                      "LoRA: one example per sequence (cut at train.seq_len, padded) instead "
                      "of packing examples end to end"));
    kinds->lora_only.push_back(
        cmd->add_flag("--merge", args->merge,
                      "LoRA: also write OUT/merged, the base with the adapter merged in (as "
                      "`greenmoe merge-adapter` writes it)"));
    for (CLI::Option* o : kinds->lora_only) o->group("LoRA fine-tuning of Hugging Face models");
    add_energy_options(cmd, args->energy);
    cmd->callback([args, kinds, cmd]() {
        const bool lora = cmd->count("--lora") > 0 || cmd->count("--adapter") > 0;
        if (lora) {
            run_lora(*args, *kinds);
        } else {
            run_full(*args, *kinds);
        }
    });
}

}  // namespace greenmoe::cli

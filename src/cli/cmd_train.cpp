// `greenmoe train`: train a model from a preset and overrides into a run folder.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/dist/communicator.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/io/output_paths.h"
#include "greenmoe/train/trainer.h"

namespace greenmoe::cli {

void register_train(CLI::App& app) {
    struct Args {
        std::string config, out, data_dir, cache_dir, tokenizer, init_from;
        std::vector<std::string> sets, resume_with_changes;
        bool no_resume = false, move_old_run = false, no_memory_check = false, quiet = false,
             shard_optimizer = false, no_overlap = false;
        int64_t stop_at = -1;
        double dist_timeout = 300.0;
        EnergyOptions energy;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "train",
        "Train a model. The run folder gets config.json, log.jsonl (one JSON object per "
        "step/eval/sample) and checkpoints/ (weights in safetensors, AdamW moments, state.json); "
        "a run folder that already has a checkpoint is resumed exactly. Started by an MPI "
        "launcher (mpirun -np N greenmoe train …) it trains data-parallel on N ranks with the "
        "same total batch.");
    cmd->add_option("-c,--config", args->config,
                    "preset JSON (configs/nano.json, configs/small.json, configs/gpt2-124m.json)")
        ->check(CLI::ExistingFile);
    cmd->add_option("-s,--set", args->sets,
                    "override a config value: section.key=value, e.g. --set train.lr=3e-4 "
                    "(sections: model, train, eval, checkpoint, data); repeatable");
    cmd->add_option("-o,--out", args->out, "run folder")->required();
    cmd->add_option("--data-dir", args->data_dir,
                    "folder holding datasets such as tinyshakespeare.txt (default: "
                    "$GREENMOE_DATA; otherwise the file is downloaded)");
    cmd->add_option("--cache-dir", args->cache_dir,
                    "where downloads and prepared shards are kept (default: $GREENMOE_CACHE or "
                    "~/.cache/greenmoe)");
    cmd->add_option("--tokenizer", args->tokenizer, "folder with encoder.json and vocab.bpe");
    cmd->add_option("--init-from", args->init_from,
                    "start from these weights and their model settings (the rest comes from the "
                    "preset): a greenmoe run, checkpoint or `simplify` output folder (healing a "
                    "pruned model), a greenmoe model.safetensors, or a Hugging Face GPT-2 "
                    "folder; --set model.* may change only routing and loss settings "
                    "(capacity factors, auxiliary weights, bias_gamma). parent.json in the run "
                    "folder records it, with its CO2e when its emissions.csv is there");
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
    cmd->add_flag("--no-memory-check", args->no_memory_check,
                  "train even when the configuration is estimated to need more memory than "
                  "the machine has");
    cmd->add_option("--stop-at", args->stop_at,
                    "save a checkpoint and stop once this many steps are done (the run can be "
                    "resumed later)")
        ->check(positive_count());
    cmd->add_flag("-q,--quiet", args->quiet, "no progress lines on the console");
    cmd->add_flag("--shard-optimizer", args->shard_optimizer,
                  "under mpirun: each rank keeps the AdamW moments of its own share of the "
                  "parameters and updates only that share (ZeRO stage 1)");
    cmd->add_flag("--no-overlap", args->no_overlap,
                  "under mpirun: sum the whole gradient after the backward pass instead of each "
                  "block's as soon as it is computed");
    cmd->add_option("--dist-timeout", args->dist_timeout,
                    "under mpirun: seconds a rank waits for the others before ending the job "
                    "(a rank died or hangs); 0 waits forever")
        ->check(at_least(0))
        ->capture_default_str();
    add_energy_options(cmd, args->energy);
    cmd->callback([args]() {
        const TrainConfig config = load_train_config(args->config, args->sets);
        check_output_folder(args->out, "--out");
        TrainOptions options;
        options.out_dir = args->out;
        options.data.data_dir = args->data_dir;
        options.data.cache_dir = args->cache_dir;
        options.data.tokenizer_dir = args->tokenizer;
        options.init_from = args->init_from;
        options.preset = args->config;
        for (const std::string& s : args->sets) {
            if (s.starts_with("model."))
                options.model_keys_set.push_back(s.substr(6, s.find('=') - 6));
        }
        options.resume = !args->no_resume;
        options.move_old_run = args->move_old_run;
        options.resume_with_changes = args->resume_with_changes;
        options.check_memory = !args->no_memory_check;
        options.stop_at_step = args->stop_at;
        options.quiet = args->quiet;
        options.energy = args->energy;
        options.shard_optimizer = args->shard_optimizer;
        options.overlap_communication = !args->no_overlap;
        const auto comm = Communicator::from_environment(args->dist_timeout);
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
    });
}

}  // namespace greenmoe::cli

// `greenmoe generate`: sample text from a checkpoint.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/eval/sampler.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/tokenizer_files.h"

namespace greenmoe::cli {

void register_generate(CLI::App& app) {
    struct Args {
        std::string checkpoint, prompt, tokenizer;
        SampleOptions sample;
        bool no_cache = false;
        EnergyOptions energy;
    };
    auto args = std::make_shared<Args>();
    args->sample.max_new_tokens = 100;
    CLI::App* cmd = app.add_subcommand(
        "generate",
        "Generate text from a trained model. A key/value cache makes each new token one "
        "position of work.");
    cmd->add_option("--checkpoint", args->checkpoint,
                    "run folder, checkpoint folder, greenmoe model.safetensors, or a Hugging Face "
                    "GPT-2 folder")
        ->required();
    cmd->add_option("-p,--prompt", args->prompt, "text to continue (default: <|endoftext|>)");
    cmd->add_option("-n,--max-tokens", args->sample.max_new_tokens, "tokens to generate")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--temperature", args->sample.temperature, "0 = greedy")
        ->check(at_least(0))
        ->capture_default_str();
    cmd->add_option("--top-k", args->sample.top_k,
                    "sample among the k most likely tokens (k ≥ the vocabulary: all of them)")
        ->check(positive_count())
        ->capture_default_str();
    cmd->add_option("--seed", args->sample.seed, "random seed")->capture_default_str();
    cmd->add_option("--tokenizer", args->tokenizer, "folder with encoder.json and vocab.bpe");
    cmd->add_flag("--no-cache", args->no_cache,
                  "re-run the whole text for every token (slow; for comparison)");
    add_energy_options(cmd, args->energy);
    cmd->callback([args]() {
        EnergyMonitor energy(args->energy);
        energy.begin_window("generate");
        const auto model = load_model(args->checkpoint, 1, args->no_cache ? 0 : 1);
        const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::load(find_tokenizer_dir(args->tokenizer));
        std::vector<int> prompt = args->prompt.empty() ? std::vector<int>{tokenizer.eot_token()}
                                                       : tokenizer.encode(args->prompt);
        const std::vector<int> out = args->no_cache
                                         ? generate_recompute(*model, prompt, args->sample)
                                         : generate(*model, prompt, args->sample);
        std::printf("%s%s\n", args->prompt.c_str(), tokenizer.decode(out).c_str());
        const EnergyMeasurement m = energy.end_window("generate");
        if (energy.enabled()) {
            std::fprintf(stderr, "%zu tokens, %.3g J/token | %s\n", out.size(),
                         out.empty() ? 0.0 : m.total_joules_with_pue / double(out.size()),
                         energy.summary_line(m).c_str());
        }
    });
}

}  // namespace greenmoe::cli

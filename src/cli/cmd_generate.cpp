// `greenmoe generate`: sample text from a greenmoe checkpoint or a Hugging Face model folder.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/eval/language_model.h"
#include "greenmoe/eval/sampler.h"
#include "greenmoe/eval/text_generation.h"

namespace greenmoe::cli {

namespace {

struct GenerateArgs {
    std::string checkpoint, model, adapter, prompt, tokenizer;
    SampleOptions sample;
    double top_p = 1.0;
    bool no_cache = false;
    EnergyOptions energy;
};

// Any model through LanguageModel; the text is printed as it comes.
int64_t generate_any(const GenerateArgs& args, const std::string& path) {
    const auto model = open_language_model(path, args.tokenizer, args.adapter);
    hf::GenerateOptions options;
    options.max_new_tokens = args.sample.max_new_tokens;
    options.temperature = args.sample.temperature;
    options.top_k = args.sample.top_k;
    options.top_p = args.top_p;
    options.seed = args.sample.seed;
    std::fputs(args.prompt.c_str(), stdout);
    const GeneratedText out =
        generate_text(*model, args.prompt, options, args.no_cache, [](const std::string& piece) {
            std::fputs(piece.c_str(), stdout);
            std::fflush(stdout);
        });
    std::fputs("\n", stdout);
    return out.new_tokens;
}

}  // namespace

void register_generate(CLI::App& app) {
    auto args = std::make_shared<GenerateArgs>();
    args->sample.max_new_tokens = 100;
    CLI::App* cmd = app.add_subcommand(
        "generate",
        "Generate text from a trained model. A key/value cache makes each new token one "
        "position of work.");
    cmd->add_option("--model", args->model,
                    "a Hugging Face model folder (config.json, safetensors weights and its "
                    "tokenizer.json), or anything --checkpoint takes");
    cmd->add_option("--adapter", args->adapter,
                    "a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) "
                    "merged into the --model Hugging Face model");
    cmd->add_option("--checkpoint", args->checkpoint,
                    "run folder, checkpoint folder, greenmoe model.safetensors, or a Hugging Face "
                    "GPT-2 folder");
    cmd->add_option("-p,--prompt", args->prompt,
                    "text to continue (default: <|endoftext|>, or a Hugging Face model's BOS)");
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
    cmd->add_option("--top-p", args->top_p,
                    "nucleus sampling: the fewest most likely tokens holding this probability")
        ->check(in_range(0, 1, true))
        ->capture_default_str();
    cmd->add_option("--seed", args->sample.seed, "random seed")->capture_default_str();
    cmd->add_option("--tokenizer", args->tokenizer,
                    "GPT-2 BPE folder (encoder.json, vocab.bpe) for greenmoe models; a "
                    "tokenizer.json or its folder for a Hugging Face model (default: the model's)");
    cmd->add_flag(
        "--no-cache", args->no_cache,
        "re-run the whole window for every token (slow; the reference the cache is checked "
        "against)");
    add_energy_options(cmd, args->energy);
    cmd->callback([args]() {
        usage_check(args->model.empty() != args->checkpoint.empty(),
                    "give the model with --model DIR (or --checkpoint), once");
        const std::string path = args->model.empty() ? args->checkpoint : args->model;
        EnergyMonitor energy(args->energy);
        energy.begin_window("generate");
        const int64_t made = generate_any(*args, path);
        const EnergyMeasurement m = energy.end_window("generate");
        if (energy.enabled()) {
            std::fprintf(stderr, "%lld tokens, %.3g J/token | %s\n", static_cast<long long>(made),
                         made == 0 ? 0.0 : m.total_joules_with_pue / double(made),
                         energy.summary_line(m).c_str());
        }
    });
}

}  // namespace greenmoe::cli

// `greenmoe generate`: sample text from a checkpoint.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "greenmoe/eval/sampler.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/tokenizer_files.h"
#include "greenmoe/train/checkpoint.h"

namespace greenmoe::cli {

void register_generate(CLI::App& app) {
    struct Args {
        std::string checkpoint, prompt, tokenizer;
        SampleOptions sample;
    };
    auto args = std::make_shared<Args>();
    args->sample.max_new_tokens = 100;
    CLI::App* cmd = app.add_subcommand("generate", "Generate text from a trained model.");
    cmd->add_option("--checkpoint", args->checkpoint,
                    "run folder, checkpoint folder or greenmoe model.safetensors")
        ->required();
    cmd->add_option("-p,--prompt", args->prompt, "text to continue (default: <|endoftext|>)");
    cmd->add_option("-n,--max-tokens", args->sample.max_new_tokens, "tokens to generate")
        ->capture_default_str();
    cmd->add_option("--temperature", args->sample.temperature, "0 = greedy")->capture_default_str();
    cmd->add_option("--top-k", args->sample.top_k, "sample among the k most likely (0 = all)")
        ->capture_default_str();
    cmd->add_option("--seed", args->sample.seed, "random seed")->capture_default_str();
    cmd->add_option("--tokenizer", args->tokenizer, "folder with encoder.json and vocab.bpe");
    cmd->callback([args]() {
        const auto weights = resolve_checkpoint_weights(args->checkpoint);
        const GptConfig config = read_gpt_weights_config(weights);
        GptModel model(config, 1, config.block_size);
        load_gpt_weights(weights, model);
        const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::load(find_tokenizer_dir(args->tokenizer));
        std::vector<int> prompt = args->prompt.empty() ? std::vector<int>{tokenizer.eot_token()}
                                                       : tokenizer.encode(args->prompt);
        const std::vector<int> out = generate(model, prompt, args->sample);
        std::printf("%s%s\n", args->prompt.c_str(), tokenizer.decode(out).c_str());
    });
}

}  // namespace greenmoe::cli

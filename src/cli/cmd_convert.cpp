// `greenmoe convert`: between greenmoe weights and Hugging Face GPT-2 folders.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/io/output_paths.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/train/checkpoint.h"

namespace greenmoe::cli {

void register_convert(CLI::App& app) {
    struct Args {
        std::string from_hf, to_hf, out;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "convert",
        "Convert weights: --to-hf exports a greenmoe checkpoint as a Hugging Face GPT-2 folder "
        "(model.safetensors in the Conv1D layout + config.json, loadable by "
        "GPT2LMHeadModel.from_pretrained); --from-hf imports a Hugging Face GPT-2 folder (e.g. "
        "OpenAI's gpt2) into a greenmoe model.safetensors.");
    auto* to = cmd->add_option("--to-hf", args->to_hf, "greenmoe run/checkpoint/weights to export");
    auto* from = cmd->add_option("--from-hf", args->from_hf, "Hugging Face GPT-2 folder to import");
    to->excludes(from);
    cmd->add_option("-o,--out", args->out, "output folder (--to-hf) or .safetensors (--from-hf)")
        ->required();
    cmd->callback([args]() {
        if (!args->to_hf.empty()) check_output_folder(args->out, "--out");
        if (!args->from_hf.empty()) check_output_file(args->out, "--out");
        if (!args->to_hf.empty()) {
            const auto weights = resolve_checkpoint_weights(args->to_hf);
            GptModel model(read_gpt_weights_config(weights), 1, 1);
            load_gpt_weights(weights, model);
            export_hf_gpt2(args->out, model);
            std::printf("wrote %s/model.safetensors and config.json\n", args->out.c_str());
        } else if (!args->from_hf.empty()) {
            GptModel model(read_hf_gpt2_config(args->from_hf), 1, 1);
            load_hf_gpt2_weights(args->from_hf, model);
            save_gpt_weights(args->out, model);
            std::printf("wrote %s (%zu parameters)\n", args->out.c_str(), model.num_parameters());
        } else {
            usage_fail("convert: give --to-hf CHECKPOINT or --from-hf FOLDER");
        }
    });
}

}  // namespace greenmoe::cli

// `greenmoe merge-adapter`: a Hugging Face model with a PEFT LoRA adapter merged in, written as
// a Hugging Face folder of the base's dtypes (what PEFT's merge_and_unload then
// save_pretrained gives).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "greenmoe/hf/lora_adapter.h"
#include "greenmoe/hf/lora_merge.h"
#include "greenmoe/io/output_paths.h"

namespace greenmoe::cli {

void register_merge_adapter(CLI::App& app) {
    struct Args {
        std::string model, adapter, out;
        bool overwrite = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "merge-adapter",
        "Merge a PEFT LoRA adapter into its Hugging Face base model and write the result as a "
        "Hugging Face folder: each targeted weight becomes W + scale·B·A (computed in fp32, "
        "rounded once to the base's dtype), every other tensor is copied byte for byte, with "
        "config.json and the tokenizer files.");
    cmd->add_option("--model", args->model, "the base: a Hugging Face model folder")->required();
    cmd->add_option("--adapter", args->adapter,
                    "PEFT adapter folder (adapter_config.json, adapter_model.safetensors)")
        ->required();
    cmd->add_option("-o,--out", args->out, "output folder")->required();
    cmd->add_flag("--overwrite", args->overwrite, "replace a non-empty output folder");
    cmd->callback([args]() {
        check_output_folder(args->out, "--out");
        const hf::LoraAdapter adapter = hf::read_lora_adapter(args->adapter);
        ModelFolderWriteOptions options;
        options.overwrite = args->overwrite;
        const ModelFolderWritten written =
            hf::write_merged_model(args->model, adapter, args->out, options);
        std::printf("merged %zu LoRA modules into %s: %zu file(s), %.1f MB of tensors\n",
                    adapter.modules.size(), args->out.c_str(), written.files.size(),
                    static_cast<double>(written.tensor_bytes) / 1e6);
    });
}

}  // namespace greenmoe::cli

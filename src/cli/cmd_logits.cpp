// `greenmoe logits`: the logits a Hugging Face model gives at every position of a token list.
#include <charconv>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/hf/lora_adapter.h"

namespace greenmoe::cli {

namespace {

// "1,2,3" → {1, 2, 3}; anything else is an error naming the bad entry.
std::vector<int32_t> parse_ids(const std::string& text) {
    std::vector<int32_t> ids;
    size_t begin = 0;
    while (begin <= text.size()) {
        size_t end = text.find(',', begin);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(begin, end - begin);
        int32_t id = 0;
        const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
        check(!item.empty() && ec == std::errc() && ptr == item.data() + item.size() && id >= 0,
              "--ids: '{}' is not a token id (expected comma-separated non-negative integers, "
              "e.g. 1,2,3)",
              item);
        ids.push_back(id);
        begin = end + 1;
    }
    return ids;
}

}  // namespace

void register_logits(CLI::App& app) {
    struct Args {
        std::string model, adapter, ids;
        bool json = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "logits",
        "Run a Hugging Face model (a folder with config.json and safetensors weights) on a list "
        "of token ids and print the logits at every position, to compare with other "
        "implementations.");
    cmd->add_option("--model", args->model, "Hugging Face model folder")->required();
    cmd->add_option("--adapter", args->adapter,
                    "a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) "
                    "merged into the model");
    cmd->add_option("--ids", args->ids, "token ids, comma separated (e.g. 1,2,3)")->required();
    cmd->add_flag("--json", args->json,
                  "print {\"logits\": [[...], ...]}: one row of vocabulary logits per position");
    cmd->callback([args]() {
        const std::vector<int32_t> ids = parse_ids(args->ids);
        const auto found =
            args->adapter.empty() ? hf::find_lora_adapter(args->model) : std::nullopt;
        const hf::HfModel model =
            found ? hf::HfModel::load_with_adapter(hf::lora_adapter_base(*found), *found)
                  : hf::HfModel::load_with_adapter(args->model, args->adapter);
        const std::vector<float> logits = model.logits(ids);
        const auto vocab = static_cast<size_t>(model.config().vocab_size);
        std::string out = args->json ? "{\"logits\": [" : "";
        for (size_t t = 0; t < ids.size(); ++t) {
            const float* row = logits.data() + t * vocab;
            if (args->json) {
                out += t ? ",\n[" : "\n[";
                for (size_t v = 0; v < vocab; ++v)
                    out += fmt::format("{}{}", v ? ", " : "", row[v]);
                out += "]";
            } else {
                size_t best = 0;
                for (size_t v = 1; v < vocab; ++v) best = row[v] > row[best] ? v : best;
                out += fmt::format("position {} (token {}): argmax {}\n", t, ids[t], best);
                for (size_t v = 0; v < vocab; ++v) out += fmt::format("{}{}", v ? " " : "", row[v]);
                out += "\n";
            }
        }
        if (args->json) out += "]}\n";
        std::fputs(out.c_str(), stdout);
    });
}

}  // namespace greenmoe::cli

// `greenmoe tokenize`: the ids a tokenizer gives a text, each token's string and text, and
// the decoded whole, for a Hugging Face tokenizer.json or GPT-2's files.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/hf_pre_tokenizer.h"
#include "greenmoe/text/hf_tokenizer.h"
#include "greenmoe/text/hf_unicode.h"
#include "greenmoe/text/tokenizer_files.h"

namespace greenmoe::cli {

namespace {

struct Tokenized {
    std::vector<int> ids;
    std::vector<std::string> tokens;  // as the vocabulary writes them
    std::vector<std::string> pieces;  // each token decoded alone
    std::string decoded;
};

Tokenized tokenize_hf(const hf::Tokenizer& tok, const std::string& text, bool add_special,
                      bool skip_special) {
    Tokenized t;
    hf::Tokenizer::Encoding e = tok.encode_with_tokens(text, add_special);
    t.ids = std::move(e.ids);
    t.tokens = std::move(e.tokens);
    for (const int id : t.ids) t.pieces.push_back(tok.decode({id}, false));
    t.decoded = tok.decode(t.ids, skip_special);
    return t;
}

Tokenized tokenize_gpt2(const Gpt2Tokenizer& tok, const std::string& text) {
    Tokenized t;
    t.ids = tok.encode(text, /*allow_special=*/true);
    const auto& chars = hf::byte_level_chars();
    for (const int id : t.ids) {
        const std::string& bytes = tok.token_bytes(id);
        std::string shown;
        for (const char c : bytes) shown += chars[static_cast<unsigned char>(c)];
        t.tokens.push_back(shown);
        t.pieces.push_back(hf::to_valid_utf8(bytes));
    }
    t.decoded = hf::to_valid_utf8(tok.decode(t.ids));
    return t;
}

std::string json_quoted(const std::string& s) {
    return nlohmann::json(s).dump();
}

}  // namespace

void register_tokenize(CLI::App& app) {
    struct Args {
        std::string tokenizer, text, file;
        bool json = false, no_special = false, keep_special = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "tokenize",
        "Print the token ids of a text, with each token's string and text, and the ids decoded "
        "back. --tokenizer takes a Hugging Face tokenizer.json (or a model folder holding one; "
        "its tokenizer_config.json is read too) or a folder with GPT-2's encoder.json and "
        "vocab.bpe.");
    cmd->add_option("text", args->text, "the text (or use --file)");
    cmd->add_option("-f,--file", args->file, "read the text from this file ('-': stdin)");
    cmd->add_option("--tokenizer", args->tokenizer,
                    "tokenizer.json, a model folder, or a GPT-2 BPE folder (default: GPT-2's)");
    cmd->add_flag("--json", args->json,
                  "print one JSON object {\"ids\": [...], \"tokens\": [...], \"decoded\": ...}");
    cmd->add_flag("--no-special", args->no_special,
                  "do not add the post-processor's special tokens (e.g. <s>)");
    cmd->add_flag("--keep-special", args->keep_special,
                  "keep special tokens in the decoded text (by default they are skipped, as in "
                  "the tokenizers library)");
    cmd->callback([args]() {
        usage_check(args->text.empty() || args->file.empty(), "give the text or --file, not both");
        std::string text = args->text;
        if (!args->file.empty()) {
            std::stringstream buffer;
            if (args->file == "-") {
                buffer << std::cin.rdbuf();
            } else {
                std::ifstream in(args->file, std::ios::binary);
                check(in.good(), "{}: cannot open the file", args->file);
                buffer << in.rdbuf();
            }
            text = buffer.str();
        }
        Tokenized t;
        if (!args->tokenizer.empty() && is_hf_tokenizer_path(args->tokenizer)) {
            const hf::Tokenizer tok = hf::Tokenizer::load(args->tokenizer);
            t = tokenize_hf(tok, text, !args->no_special, !args->keep_special);
        } else {
            const Gpt2Tokenizer tok = Gpt2Tokenizer::load(find_tokenizer_dir(args->tokenizer));
            t = tokenize_gpt2(tok, text);
        }
        if (args->json) {
            const nlohmann::json out = {
                {"ids", t.ids}, {"tokens", t.tokens}, {"decoded", t.decoded}};
            std::printf("%s\n", out.dump().c_str());
            return;
        }
        for (size_t i = 0; i < t.ids.size(); ++i) {
            std::printf("%8d  %-24s %s\n", t.ids[i], json_quoted(t.tokens[i]).c_str(),
                        json_quoted(t.pieces[i]).c_str());
        }
        std::printf("%zu tokens; decoded: %s\n", t.ids.size(), json_quoted(t.decoded).c_str());
    });
}

}  // namespace greenmoe::cli

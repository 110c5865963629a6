// `greenmoe prepare`: Parquet, text or JSONL (optionally .gz / .zst) → llm.c token shards, with
// GPT-2's tokenizer or a Hugging Face model's.
#include <cstdio>
#include <memory>
#include <optional>

#include "commands.h"
#include "greenmoe/core/option_checks.h"
#include "greenmoe/io/output_paths.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/hf_tokenizer.h"
#include "greenmoe/text/prepare.h"
#include "greenmoe/text/tokenizer_files.h"

namespace greenmoe::cli {

void register_prepare(CLI::App& app) {
    struct Args {
        std::vector<std::string> inputs;
        std::string out, name = "data", tokenizer, delimiter;
        std::string text_column = "text", score_column = "int_score";
        std::optional<double> min_score;
        bool no_resume = false;
        size_t shard_tokens = 100'000'000, val_tokens = 32768;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand(
        "prepare",
        "Tokenize text into llm.c token shards (256×int32 header, magic 20240520, uint16 "
        "tokens; magic 20240801, uint32 tokens for vocabularies over 65,536).\nInputs: .parquet "
        "(Hugging Face data sets such as FineWeb-Edu: the --text-column of each row), .txt (one "
        "document; '<|endoftext|>' separates documents) or .jsonl (a \"text\" field per line), "
        "the last two optionally .gz or .zst compressed, or folders of such files (taken in name "
        "order). Every document is preceded by a delimiter token "
        "(GPT-2: <|endoftext|>; a Hugging Face tokenizer: its bos_token, else its eos_token). "
        "The first --val-tokens tokens form <name>_val_000000.bin, the rest "
        "<name>_train_NNNNNN.bin. An interrupted run started again with the same inputs and "
        "options continues where it stopped.");
    cmd->add_option("inputs", args->inputs, "input files or folders")
        ->required()
        ->check(CLI::ExistingPath);
    cmd->add_option("-o,--out", args->out, "output folder for the shards")->required();
    cmd->add_option("--name", args->name, "shard name prefix")->capture_default_str();
    cmd->add_option("--shard-tokens", args->shard_tokens, "tokens per training shard")
        ->capture_default_str()
        ->check(positive_count());
    cmd->add_option("--val-tokens", args->val_tokens, "tokens in the validation shard")
        ->capture_default_str()
        ->check(positive_count());
    cmd->add_option("--tokenizer", args->tokenizer,
                    "a Hugging Face tokenizer (tokenizer.json, or a model folder holding one), or "
                    "a folder with GPT-2's encoder.json and vocab.bpe (default: GPT-2's, from "
                    "$GREENMOE_TOKENIZER or ~/.cache/greenmoe/gpt2-bpe)");
    cmd->add_option("--text-column", args->text_column,
                    "the Parquet column / JSONL field holding each document's text")
        ->capture_default_str();
    cmd->add_option("--min-score", args->min_score,
                    "keep only documents whose --score-column is at least this (FineWeb-Edu: "
                    "--min-score 3 keeps int_score >= 3)");
    cmd->add_option("--score-column", args->score_column,
                    "the Parquet column / JSONL field --min-score compares")
        ->capture_default_str();
    cmd->add_flag("--no-resume", args->no_resume,
                  "start over even when an interrupted run of the same inputs left a resume state");
    cmd->add_option("--delimiter", args->delimiter,
                    "Hugging Face tokenizers: the token put before every document (default: "
                    "bos_token, else eos_token, else <|endoftext|>)");
    cmd->callback([args]() {
        check_output_folder(args->out, "--out");
        PrepareOptions options;
        for (const auto& in : args->inputs) options.inputs.emplace_back(in);
        options.out_dir = args->out;
        options.name = args->name;
        options.shard_tokens = args->shard_tokens;
        options.val_tokens = args->val_tokens;
        options.corpus.text_column = args->text_column;
        options.corpus.score_column = args->score_column;
        options.corpus.min_score = args->min_score;
        options.resume = !args->no_resume;
        PrepareResult r;
        if (!args->tokenizer.empty() && is_hf_tokenizer_path(args->tokenizer)) {
            const hf::Tokenizer tokenizer = hf::Tokenizer::load(args->tokenizer);
            const auto encoder = make_document_encoder(tokenizer, args->delimiter);
            r = prepare_shards(options, *encoder);
        } else {
            usage_check(args->delimiter.empty(),
                        "--delimiter is for Hugging Face tokenizers; GPT-2's delimiter is "
                        "<|endoftext|>");
            const Gpt2Tokenizer tokenizer =
                Gpt2Tokenizer::load(find_tokenizer_dir(args->tokenizer));
            r = prepare_shards(options, tokenizer);
        }
        if (r.resumed_train_shards > 0) {
            std::printf("resumed an interrupted run: kept its %zu train shards\n",
                        r.resumed_train_shards);
        }
        std::printf(
            "prepared %zu documents: %zu train tokens in %zu shards, %zu val tokens in %s\n",
            r.documents, r.train_tokens, r.train_shards.size(), r.val_tokens, args->out.c_str());
    });
}

}  // namespace greenmoe::cli

// `prepare`: corpus files → GPT-2 token shards in llm.c's .bin format, plus prepare.json.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/text/gpt2_tokenizer.h"

namespace greenmoe {

struct PrepareOptions {
    std::vector<std::filesystem::path> inputs;  // .txt / .jsonl, optionally .gz / .zst
    std::filesystem::path out_dir;
    std::string name = "data";          // shard file names start with it
    size_t shard_tokens = 100'000'000;  // at most this many tokens per train shard
    size_t val_tokens = 32768;          // the first tokens of the stream, for validation
    bool show_progress = true;          // a progress bar on stderr
};

struct PrepareResult {
    size_t documents = 0, train_tokens = 0, val_tokens = 0;
    std::vector<std::filesystem::path> train_shards, val_shards;
};

// Each document becomes [<|endoftext|>] + its tokens (GPT-2's convention: the token
// delimits documents), in input order. The stream's first val_tokens tokens go to
// <name>_val_000000.bin, the rest to <name>_train_000000.bin, _000001, ... of at most
// shard_tokens each. Shards of an earlier run with the same name that this run did not
// rewrite are removed, so the folder holds one consistent data set. Memory stays
// bounded by one shard plus one batch of documents. Throws Error when an input cannot
// be read, or when the corpus has no more than val_tokens tokens.
PrepareResult prepare_shards(const PrepareOptions& options, const Gpt2Tokenizer& tokenizer);

}  // namespace greenmoe

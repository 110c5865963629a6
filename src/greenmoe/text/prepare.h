// `prepare`: corpus files → token shards in llm.c's .bin format, plus prepare.json. GPT-2's
// tokenizer for greenmoe's models, or a Hugging Face model's own.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/text/corpus_reader.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/hf_tokenizer.h"

namespace greenmoe {

struct PrepareOptions {
    // .parquet, .txt / .jsonl (optionally .gz / .zst), or folders of them (see
    // expand_corpus_inputs).
    std::vector<std::filesystem::path> inputs;
    CorpusOptions corpus;  // text column, score filter
    std::filesystem::path out_dir;
    std::string name = "data";          // shard file names start with it
    size_t shard_tokens = 100'000'000;  // at most this many tokens per train shard
    size_t val_tokens = 32768;          // the first tokens of the stream, for validation
    bool show_progress = true;          // a progress bar on stderr
    // Continue an interrupted preparation of the same inputs and options from its resume
    // state (<out_dir>/<name>.prepare-state.json); false starts over.
    bool resume = true;
    // Called after each train shard and the resume state are on disk, with the number of
    // train shards written (tests interrupt a preparation by throwing from it).
    std::function<void(size_t)> after_train_shard;
};

struct PrepareResult {
    size_t documents = 0, train_tokens = 0, val_tokens = 0;
    size_t resumed_train_shards = 0;  // train shards kept from an interrupted run
    std::vector<std::filesystem::path> train_shards, val_shards;
};

// What prepare needs of a tokenizer: whole documents to ids, on all threads.
class DocumentEncoder {
  public:
    virtual ~DocumentEncoder() = default;
    // tokens[i] = the delimiter token followed by the ids of documents[i].
    virtual void encode_documents(const std::vector<std::string>& documents,
                                  std::vector<std::vector<int>>& tokens) = 0;
    virtual int vocab_size() const = 0;
    // prepare.json's "tokenizer" object.
    virtual nlohmann::ordered_json description() const = 0;
};

// GPT-2: <|endoftext|> before every document.
std::unique_ptr<DocumentEncoder> make_document_encoder(const Gpt2Tokenizer& tokenizer);
// A Hugging Face tokenizer: `delimiter` (a token string) before every document; empty: the
// model's bos_token, else its eos_token, else "<|endoftext|>" if the vocabulary has it (the
// conventions of llm.c's Llama-3 and GPT-2 data). Throws Error when none applies. The texts
// are encoded without the post-processor's special tokens.
std::unique_ptr<DocumentEncoder> make_document_encoder(const hf::Tokenizer& tokenizer,
                                                       const std::string& delimiter = "");

// Each document becomes [delimiter] + its tokens (GPT-2's convention: the token
// delimits documents), in input order. The stream's first val_tokens tokens go to
// <name>_val_000000.bin, the rest to <name>_train_000000.bin, _000001, ... of at most
// shard_tokens each. Shards of an earlier run with the same name that this run did not
// rewrite are removed, so the folder holds one consistent data set. Memory stays
// bounded by one shard plus one batch of documents. Throws Error when an input cannot
// be read, or when the corpus has no more than val_tokens tokens.
// Shards hold uint16 ids, or uint32 ids (llm.c's magic 20240801) when the vocabulary has
// more than 65,536 ids.
// Resuming: after each train shard a resume state records the shards written and the input
// position (file, document, tokens of that document already written). A run with the same
// inputs (paths, sizes, times), options and tokenizer continues from there, skipping the
// documents before it without tokenizing them, and gives the same shards as an uninterrupted
// run. The state is removed once prepare.json is written.
PrepareResult prepare_shards(const PrepareOptions& options, DocumentEncoder& encoder);
PrepareResult prepare_shards(const PrepareOptions& options, const Gpt2Tokenizer& tokenizer);

}  // namespace greenmoe

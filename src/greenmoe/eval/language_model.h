// One interface for every model greenmoe evaluates — greenmoe checkpoints and Hugging Face
// folders (original or pruned) — as benchmark tasks need it: its tokenizer, the tokens a
// context starts with, its context window, and the log-likelihood of continuations after a
// context, the context computed once for all of them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "greenmoe/eval/decode_batch.h"
#include "greenmoe/hf/scoring.h"

namespace greenmoe {

// Σ log P(token | everything before it) in double, whether every token was the argmax of
// its prediction, and the token count: the engine's record, for both kinds of model.
using ContinuationLogLikelihood = hf::ContinuationScore;
// One context (non-empty) and the continuations (each non-empty) scored after it.
using ScoreRequest = hf::ScoreRequest;

// What running a model costs in parameters.
struct ModelSize {
    int64_t parameters = 0;  // every weight
    // What one token reads: each MoE layer's routed experts counted top_k times, not n.
    int64_t active_parameters = 0;
    // Routed experts per MoE layer (dense layers omitted), in layer order; empty for dense
    // models. A pruned model has fewer than its original.
    std::vector<int> experts_per_moe_layer;
    int top_k = 0;  // experts a token is routed to (0 for dense models)
};

class LanguageModel {
  public:
    virtual ~LanguageModel() = default;

    // What the model is, for results files: the path as given.
    virtual const std::string& name() const = 0;
    // The text's ids as the model's tokenizer encodes it, without special tokens.
    virtual std::vector<int32_t> encode(const std::string& text) const = 0;
    // What lm-evaluation-harness puts before every context: the BOS where the tokenizer adds
    // one (Llama-style), else nothing.
    virtual std::vector<int32_t> context_prefix() const = 0;
    // The harness's prefix_token_id: what an empty context becomes.
    virtual int32_t empty_context_token() const = 0;
    // Positions the model attends over (block_size, max_position_embeddings).
    virtual int max_length() const = 0;
    // Continuations (each non-empty) after one non-empty context, context + continuation at
    // most max_length() + 1 tokens (the last token is predicted, never fed).
    virtual std::vector<ContinuationLogLikelihood> score(
        std::span<const int32_t> context,
        const std::vector<std::vector<int32_t>>& continuations) const = 0;
    // Several requests together, each as score() scores it: their contexts in one pass, then
    // all their continuations in another, so that small requests make large matrix products.
    // Equal to scoring them one by one up to float rounding.
    virtual std::vector<std::vector<ContinuationLogLikelihood>> score_batch(
        const std::vector<ScoreRequest>& requests) const = 0;

    // Generation and the inference benchmark.
    // Logits per position: the real vocabulary (greenmoe's padding excluded).
    virtual int vocab_size() const = 0;
    // Text of ids as the tokenizer decodes them (special tokens dropped; ids past the
    // tokenizer's vocabulary, a padded embedding's, decode to nothing).
    virtual std::string decode(std::span<const int32_t> ids) const = 0;
    // The ids a prompt becomes, with what the tokenizer puts in front (a BOS); an empty prompt
    // becomes the model's start token (BOS, else EOS / <|endoftext|>).
    virtual std::vector<int32_t> encode_prompt(const std::string& text) const = 0;
    // Tokens that end a generated text: eos_token_id (one or a list) and the tokenizer's EOS;
    // none for greenmoe models, which write <|endoftext|> between documents, not at an end.
    virtual std::vector<int32_t> stop_tokens() const = 0;
    // `batch` sequences of up to `max_len` positions (≤ max_length()) decoded together.
    virtual std::unique_ptr<DecodeBatch> start_decoding(int batch, int max_len) const = 0;
    virtual ModelSize size() const = 0;
};

// A greenmoe run, checkpoint, simplify output or GPT-2 folder (with the GPT-2 BPE files from
// `tokenizer`, or found as every command finds them), or a Hugging Face folder the engine
// runs (its tokenizer.json, or `tokenizer` when given), with a PEFT LoRA `adapter` folder merged
// in when given (Hugging Face models only; UsageError for a greenmoe model).
std::unique_ptr<LanguageModel> open_language_model(const std::filesystem::path& model,
                                                   const std::string& tokenizer = {},
                                                   const std::filesystem::path& adapter = {});

}  // namespace greenmoe

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

#include "greenmoe/hf/scoring.h"

namespace greenmoe {

// Σ log P(token | everything before it) in double, whether every token was the argmax of
// its prediction, and the token count: the engine's record, for both kinds of model.
using ContinuationLogLikelihood = hf::ContinuationScore;

class ScoringModel {
  public:
    virtual ~ScoringModel() = default;

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
};

// A greenmoe run, checkpoint, simplify output or GPT-2 folder (with the GPT-2 BPE files from
// `tokenizer`, or found as every command finds them), or a Hugging Face folder the engine
// runs (its tokenizer.json, or `tokenizer` when given).
std::unique_ptr<ScoringModel> open_scoring_model(const std::filesystem::path& model,
                                                 const std::string& tokenizer = {});

}  // namespace greenmoe

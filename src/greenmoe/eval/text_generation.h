// Text generation with any model greenmoe runs (a greenmoe checkpoint or a Hugging Face
// folder) through LanguageModel: greedy or sampled (temperature, top-k, top-p, seed) over the
// key/value cache, stopping at the model's end-of-sequence tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "greenmoe/eval/language_model.h"
#include "greenmoe/hf/generate.h"

namespace greenmoe {

// Extends the prompt (non-empty) by up to max_new_tokens tokens, stopping after one of
// options.stop_tokens. The prompt runs once, then each new token is one position; draws are
// keyed by (seed, position), so a seed gives the same text. When the text fills the model's
// window, the cache restarts from its last half window. `recompute` runs the whole window
// again for every token instead (slow: the reference the cache is checked against).
std::vector<int32_t> generate_tokens(const LanguageModel& model, std::span<const int32_t> prompt,
                                     const hf::GenerateOptions& options, bool recompute = false,
                                     const std::function<void(int32_t)>& on_token = {});
// The same over any decoder: `window` positions, logits over `vocab` tokens.
std::vector<int32_t> generate_tokens(const DecoderFactory& start, int window, int vocab,
                                     std::span<const int32_t> prompt,
                                     const hf::GenerateOptions& options, bool recompute = false,
                                     const std::function<void(int32_t)>& on_token = {});

struct GeneratedText {
    // What the new tokens add to the decoded prompt (special tokens dropped).
    std::string text;
    int64_t prompt_tokens = 0, new_tokens = 0;
    bool stopped = false;  // ended at a stop token, not at max_new_tokens
};

// The prompt encoded as the model's tokenizer does (BOS and all; empty: the start token).
// Empty options.stop_tokens: the model's. `on_text` sees each piece of text as soon as it
// decodes to whole characters.
GeneratedText generate_text(const LanguageModel& model, const std::string& prompt,
                            hf::GenerateOptions options, bool recompute = false,
                            const std::function<void(const std::string&)>& on_text = {});

}  // namespace greenmoe

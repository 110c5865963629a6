// Text in, text out with a Hugging Face model and its own tokenizer: what `greenmoe generate
// --model` prints.
#pragma once

#include <functional>
#include <string>

#include "greenmoe/hf/generate.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/text/hf_tokenizer.h"

namespace greenmoe {

struct GeneratedText {
    // What the new tokens add to the decoded prompt (special tokens dropped).
    std::string text;
    int64_t prompt_tokens = 0, new_tokens = 0;
    bool stopped = false;  // ended at an eos_token_id, not at max_new_tokens
};

// Encodes the prompt as the tokenizer does (BOS and all); an empty prompt starts from the
// BOS (else the EOS). Empty stop_tokens: the model's eos_token_id(s) and the tokenizer's EOS.
// `on_text` sees each piece of text as soon as it decodes to whole characters.
GeneratedText generate_text(const hf::HfModel& model, const hf::Tokenizer& tokenizer,
                            const std::string& prompt, hf::GenerateOptions options,
                            const std::function<void(const std::string&)>& on_text = {});

}  // namespace greenmoe

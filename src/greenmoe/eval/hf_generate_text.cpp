// Prompt to text with a Hugging Face model (see hf_generate_text.h).
#include "greenmoe/eval/hf_generate_text.h"

#include <algorithm>

#include "greenmoe/eval/hf_text.h"

namespace greenmoe {

GeneratedText generate_text(const hf::HfModel& model, const hf::Tokenizer& tokenizer,
                            const std::string& prompt, hf::GenerateOptions options,
                            const std::function<void(const std::string&)>& on_text) {
    if (options.stop_tokens.empty()) {
        options.stop_tokens = model.config().eos_token_ids;
        if (tokenizer.eos_id()) options.stop_tokens.push_back(*tokenizer.eos_id());
    }
    std::vector<int32_t> ids;
    for (const int id : tokenizer.encode(prompt, true)) ids.push_back(id);
    if (ids.empty()) ids.push_back(empty_context_token(model, tokenizer));
    GeneratedText out;
    out.prompt_tokens = static_cast<int64_t>(ids.size());
    // The new text is what decoding prompt + new tokens adds to the decoded prompt, as
    // transformers' TextStreamer finds it: decoders that strip a word's leading space (▁)
    // at the start of a text would otherwise glue the first new word to the prompt.
    // Ids past the tokenizer's (a vocabulary padded for speed) decode to nothing, as
    // transformers gives them.
    std::vector<int> all(ids.begin(), ids.end());
    const std::string prompt_text = tokenizer.decode(all);
    std::string shown;
    auto new_text = [&]() {
        const std::string text = tokenizer.decode(all);
        if (text.compare(0, prompt_text.size(), prompt_text) == 0) {
            return text.substr(prompt_text.size());
        }
        return tokenizer.decode(std::vector<int>(all.begin() + out.prompt_tokens, all.end()));
    };
    auto on_token = [&](int32_t token) {
        if (token < tokenizer.vocab_size()) all.push_back(token);
        if (!on_text) return;
        const std::string text = new_text();
        // A trailing U+FFFD is a character still incomplete.
        if (text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0) return;
        if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
            on_text(text.substr(shown.size()));
            shown = text;
        }
    };
    const auto tokens = hf::generate(model, ids, options, on_token);
    out.new_tokens = static_cast<int64_t>(tokens.size());
    out.stopped =
        !tokens.empty() && std::find(options.stop_tokens.begin(), options.stop_tokens.end(),
                                     tokens.back()) != options.stop_tokens.end();
    out.text = new_text();
    if (on_text && out.text.size() > shown.size() &&
        out.text.compare(0, shown.size(), shown) == 0) {
        on_text(out.text.substr(shown.size()));
    }
    return out;
}

}  // namespace greenmoe

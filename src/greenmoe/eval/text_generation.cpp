// Prompt to tokens and text with any LanguageModel (see text_generation.h).
#include "greenmoe/eval/text_generation.h"

#include <algorithm>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"

namespace greenmoe {

namespace {

// The stream hf::generate has always drawn from, so a seed keeps giving the same text.
constexpr uint64_t kGenerateStream = 0x68665f67656eULL;  // "hf_gen"

bool is_stop(const hf::GenerateOptions& o, int32_t token) {
    return std::find(o.stop_tokens.begin(), o.stop_tokens.end(), token) != o.stop_tokens.end();
}

}  // namespace

std::vector<int32_t> generate_tokens(const LanguageModel& model, std::span<const int32_t> prompt,
                                     const hf::GenerateOptions& options, bool recompute,
                                     const std::function<void(int32_t)>& on_token) {
    const DecoderFactory start = [&](int batch, int max_len) {
        return model.start_decoding(batch, max_len);
    };
    return generate_tokens(start, model.max_length(), model.vocab_size(), prompt, options,
                           recompute, on_token);
}

std::vector<int32_t> generate_tokens(const DecoderFactory& start, int window, int vocab,
                                     std::span<const int32_t> prompt, const hf::GenerateOptions& o,
                                     bool recompute, const std::function<void(int32_t)>& on_token) {
    check(!prompt.empty(), "generate: the prompt is empty (give at least one token)");
    const uint64_t key = rng_key(o.seed, kGenerateStream);
    std::vector<int32_t> text(prompt.begin(), prompt.end());
    std::unique_ptr<DecodeBatch> batch;
    // Runs the last `n` tokens of the text in a fresh cache.
    auto restart = [&](size_t n) -> const std::vector<float>& {
        batch.reset();
        batch = start(1, window);
        return batch->step({std::vector<int32_t>(text.end() - ptrdiff_t(n), text.end())});
    };
    const std::vector<float>* logits = &restart(std::min(text.size(), size_t(window)));
    std::vector<int32_t> out;
    for (int step = 0; step < o.max_new_tokens; ++step) {
        const auto position = static_cast<uint64_t>(text.size());
        const double u = static_cast<double>(rng_u64(key, position) >> 11) * 0x1.0p-53;
        const int32_t next = hf::pick_token(logits->data(), vocab, o, u);
        out.push_back(next);
        text.push_back(next);
        if (on_token) on_token(next);
        if (is_stop(o, next) || step + 1 == o.max_new_tokens) break;
        if (recompute) {
            logits = &restart(std::min(text.size(), size_t(window)));
        } else if (batch->length(0) == window) {
            logits = &restart(size_t(std::max(1, window / 2)));
        } else {
            logits = &batch->step({{next}});
        }
    }
    return out;
}

GeneratedText generate_text(const LanguageModel& model, const std::string& prompt,
                            hf::GenerateOptions options, bool recompute,
                            const std::function<void(const std::string&)>& on_text) {
    if (options.stop_tokens.empty()) options.stop_tokens = model.stop_tokens();
    const std::vector<int32_t> ids = model.encode_prompt(prompt);
    GeneratedText out;
    out.prompt_tokens = static_cast<int64_t>(ids.size());
    // The new text is what decoding prompt + new tokens adds to the decoded prompt, as
    // transformers' TextStreamer finds it: decoders that strip a word's leading space (▁)
    // at the start of a text would otherwise glue the first new word to the prompt.
    std::vector<int32_t> all = ids;
    const std::string prompt_text = model.decode(all);
    std::string shown;
    auto new_text = [&]() {
        const std::string text = model.decode(all);
        if (text.compare(0, prompt_text.size(), prompt_text) == 0) {
            return text.substr(prompt_text.size());
        }
        return model.decode(std::span<const int32_t>(all).subspan(ids.size()));
    };
    auto on_token = [&](int32_t token) {
        all.push_back(token);
        if (!on_text) return;
        const std::string text = new_text();
        // A trailing U+FFFD is a character still incomplete.
        if (text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0) return;
        if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
            on_text(text.substr(shown.size()));
            shown = text;
        }
    };
    const auto tokens = generate_tokens(model, ids, options, recompute, on_token);
    out.new_tokens = static_cast<int64_t>(tokens.size());
    out.stopped = !tokens.empty() && is_stop(options, tokens.back());
    out.text = new_text();
    if (on_text && out.text.size() > shown.size() &&
        out.text.compare(0, shown.size(), shown) == 0) {
        on_text(out.text.substr(shown.size()));
    }
    return out;
}

}  // namespace greenmoe

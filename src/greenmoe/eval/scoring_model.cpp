// The two kinds of model behind ScoringModel (see scoring_model.h): greenmoe's GPT through
// its KV-cache inference, Hugging Face models through the engine's continuation scoring.
#include "greenmoe/eval/scoring_model.h"

#include <algorithm>

#include "greenmoe/core/error.h"
#include "greenmoe/eval/hf_text.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/model/gpt_inference.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/hf_tokenizer.h"
#include "greenmoe/text/tokenizer_files.h"

namespace greenmoe {

namespace fs = std::filesystem;

namespace {

void check_request(std::span<const int32_t> context,
                   const std::vector<std::vector<int32_t>>& continuations, int max_length) {
    check(!context.empty(), "scoring: the context is empty (give at least one token)");
    for (size_t c = 0; c < continuations.size(); ++c) {
        check(!continuations[c].empty(), "scoring: continuation {} is empty", c);
        check(context.size() + continuations[c].size() <= size_t(max_length) + 1,
              "scoring: context {} + continuation {} tokens exceed the window of {} (+1)",
              context.size(), continuations[c].size(), max_length);
    }
}

class GreenmoeScoringModel : public ScoringModel {
  public:
    GreenmoeScoringModel(const fs::path& path, const std::string& tokenizer)
        : name_(path.string()),
          model_(load_model(path, 1, 1)),
          tokenizer_(Gpt2Tokenizer::load(find_tokenizer_dir(tokenizer))) {}

    const std::string& name() const override { return name_; }
    std::vector<int32_t> encode(const std::string& text) const override {
        const std::vector<int> ids = tokenizer_.encode_ordinary(text);
        return {ids.begin(), ids.end()};
    }
    std::vector<int32_t> context_prefix() const override { return {}; }
    int32_t empty_context_token() const override { return tokenizer_.eot_token(); }
    int max_length() const override { return model_->config().block_size; }

    // The context but its last token fills slot 0; the other slots copy that prefix; each
    // continuation then runs [last context token, continuation without its last token] in
    // its own slot, whose logits predict the continuation's tokens.
    std::vector<ContinuationLogLikelihood> score(
        std::span<const int32_t> context,
        const std::vector<std::vector<int32_t>>& continuations) const override {
        check_request(context, continuations, max_length());
        const GptConfig& config = model_->config();
        const int slots = std::max<int>(1, static_cast<int>(continuations.size()));
        if (!inference_ || inference_->max_batch() < slots) {
            inference_.reset();  // free the old cache first
            inference_ = std::make_unique<GptInference>(*model_, slots, config.block_size,
                                                        config.block_size);
        }
        GptInference& inf = *inference_;
        const int prefix = static_cast<int>(context.size()) - 1;
        if (prefix > 0) {
            const std::vector<int> tokens(context.begin(), context.end() - 1);
            const int slot = 0, start = 0;
            inf.forward(tokens.data(), &slot, &start, &prefix, 1, GptInference::Logits::None);
        }
        for (int s = 1; s < slots; ++s) inf.copy_prefix(0, s, prefix);

        std::vector<ContinuationLogLikelihood> scores(continuations.size());
        std::vector<int> tokens, slot, start, count;
        std::vector<size_t> owner;
        auto flush = [&] {
            if (slot.empty()) return;
            const float* logits =
                inf.forward(tokens.data(), slot.data(), start.data(), count.data(),
                            static_cast<int>(slot.size()), GptInference::Logits::All);
            size_t row = 0;
            for (size_t i = 0; i < slot.size(); ++i) {
                const std::vector<int32_t>& cont = continuations[owner[i]];
                for (int t = 0; t < count[i]; ++t, ++row) {
                    hf::add_token_score(logits + row * size_t(config.padded_vocab_size),
                                        config.vocab_size, cont[size_t(t)], scores[owner[i]]);
                }
            }
            tokens.clear();
            slot.clear();
            start.clear();
            count.clear();
            owner.clear();
        };
        for (size_t c = 0; c < continuations.size(); ++c) {
            const std::vector<int32_t>& cont = continuations[c];
            if (tokens.size() + cont.size() > size_t(inf.max_tokens())) flush();
            tokens.push_back(context.back());
            tokens.insert(tokens.end(), cont.begin(), cont.end() - 1);
            slot.push_back(static_cast<int>(c));
            start.push_back(prefix);
            count.push_back(static_cast<int>(cont.size()));
            owner.push_back(c);
        }
        flush();
        return scores;
    }

  private:
    std::string name_;
    std::unique_ptr<GptModel> model_;
    Gpt2Tokenizer tokenizer_;
    mutable std::unique_ptr<GptInference> inference_;
};

class HfScoringModel : public ScoringModel {
  public:
    HfScoringModel(const fs::path& path, const std::string& tokenizer)
        : name_(path.string()),
          model_(hf::HfModel::load(path)),
          tokenizer_(hf::Tokenizer::load(tokenizer.empty() ? path : fs::path(tokenizer))),
          prefix_(bos_prefix(tokenizer_)) {}

    const std::string& name() const override { return name_; }
    std::vector<int32_t> encode(const std::string& text) const override {
        const std::vector<int> ids = tokenizer_.encode(text, false);
        return {ids.begin(), ids.end()};
    }
    std::vector<int32_t> context_prefix() const override { return prefix_; }
    // Asked only when a context is empty: a model without BOS or EOS can score others.
    int32_t empty_context_token() const override {
        return greenmoe::empty_context_token(model_, tokenizer_);
    }
    // lm-evaluation-harness's default when the config names no window.
    int max_length() const override {
        const int n = model_.config().rope.max_position;
        return n > 0 ? n : 2048;
    }
    std::vector<ContinuationLogLikelihood> score(
        std::span<const int32_t> context,
        const std::vector<std::vector<int32_t>>& continuations) const override {
        check_request(context, continuations, max_length());
        return hf::score_continuations(model_, context, continuations);
    }

  private:
    std::string name_;
    hf::HfModel model_;
    hf::Tokenizer tokenizer_;
    std::vector<int32_t> prefix_;
};

}  // namespace

std::unique_ptr<ScoringModel> open_scoring_model(const fs::path& model,
                                                 const std::string& tokenizer) {
    if (is_hf_engine_model(model)) return std::make_unique<HfScoringModel>(model, tokenizer);
    return std::make_unique<GreenmoeScoringModel>(model, tokenizer);
}

}  // namespace greenmoe

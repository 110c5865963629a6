// The two kinds of model behind LanguageModel (see language_model.h): greenmoe's GPT through
// its KV-cache inference, Hugging Face models through the engine's continuation scoring.
#include "greenmoe/eval/language_model.h"

#include <algorithm>
#include <functional>

#include "greenmoe/core/error.h"
#include "greenmoe/eval/hf_decode_batch.h"
#include "greenmoe/eval/hf_text.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/hf/lora_adapter.h"
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

// The ids a tokenizer knows: a padded embedding's ids past its vocabulary decode to nothing,
// as transformers decodes them.
std::vector<int> known_ids(std::span<const int32_t> ids, int vocab) {
    std::vector<int> known;
    for (const int32_t id : ids) {
        if (id < vocab) known.push_back(id);
    }
    return known;
}

class GreenmoeLanguageModel : public LanguageModel {
  public:
    GreenmoeLanguageModel(const fs::path& path, const std::string& tokenizer)
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

    std::vector<ContinuationLogLikelihood> score(
        std::span<const int32_t> context,
        const std::vector<std::vector<int32_t>>& continuations) const override {
        return std::move(
            score_batch({ScoreRequest{{context.begin(), context.end()}, continuations}}).front());
    }
    std::vector<std::vector<ContinuationLogLikelihood>> score_batch(
        const std::vector<ScoreRequest>& requests) const override;

    int vocab_size() const override { return model_->config().vocab_size; }
    std::string decode(std::span<const int32_t> ids) const override {
        return tokenizer_.decode(known_ids(ids, tokenizer_.vocab_size()));
    }
    std::vector<int32_t> encode_prompt(const std::string& text) const override {
        if (text.empty()) return {tokenizer_.eot_token()};
        // A prompt may name <|endoftext|> itself (a document boundary).
        const std::vector<int> ids = tokenizer_.encode(text);
        return {ids.begin(), ids.end()};
    }
    std::vector<int32_t> stop_tokens() const override { return {}; }
    std::unique_ptr<DecodeBatch> start_decoding(int batch, int max_len) const override;
    ModelSize size() const override;

  private:
    std::string name_;
    std::unique_ptr<GptModel> model_;
    Gpt2Tokenizer tokenizer_;
    mutable std::unique_ptr<GptInference> inference_;
};

// Each request's context but its last token fills the first of its slots, all requests in one
// call; its other slots copy that prefix; each continuation then runs [last context token,
// continuation without its last token] in its own slot, all continuations of all requests in
// one call, whose logits predict the continuations' tokens. Calls are cut to the buffers'
// max_tokens() positions.
std::vector<std::vector<ContinuationLogLikelihood>> GreenmoeLanguageModel::score_batch(
    const std::vector<ScoreRequest>& requests) const {
    const GptConfig& config = model_->config();
    int slots = 0, length = 1;
    for (const ScoreRequest& r : requests) {
        check_request(r.context, r.continuations, max_length());
        slots += std::max<int>(1, static_cast<int>(r.continuations.size()));
        for (const auto& cont : r.continuations) {
            length = std::max(length, static_cast<int>(r.context.size() + cont.size()) - 1);
        }
    }
    // The cache holds slots × length positions: sized to the batch, not to block_size, so
    // many short requests fit where many full windows would not. It grows by doubling, so a
    // run of growing requests reallocates (and zeroes) its buffers a few times, not per call.
    if (!inference_ || inference_->max_batch() < slots || inference_->max_len() < length) {
        const int old_batch = inference_ ? inference_->max_batch() : 1;
        const int old_len = inference_ ? inference_->max_len() : 1;
        const int max_batch = old_batch >= slots ? old_batch : std::max(slots, 2 * old_batch);
        const int max_len = old_len >= length
                                ? old_len
                                : std::min(config.block_size, std::max(length, 2 * old_len));
        inference_.reset();  // free the old cache first
        inference_ = std::make_unique<GptInference>(*model_, max_batch, max_len,
                                                    std::max(config.block_size, 1024));
    }
    GptInference& inf = *inference_;
    const size_t budget = size_t(inf.max_tokens());

    // Packs sequences (tokens, slot, start) into calls of at most `budget` positions; a
    // sequence never exceeds it (block_size ≤ budget).
    std::vector<int> tokens, slot, start, count;
    std::vector<std::pair<size_t, size_t>> owner;  // (request, continuation) per sequence
    auto run = [&](GptInference::Logits kind, const std::function<void(const float*)>& use) {
        if (slot.empty()) return;
        const float* logits = inf.forward(tokens.data(), slot.data(), start.data(), count.data(),
                                          static_cast<int>(slot.size()), kind);
        if (use) use(logits);
        tokens.clear();
        slot.clear();
        start.clear();
        count.clear();
    };

    std::vector<int> first_slot(requests.size());
    for (size_t r = 0, next = 0; r < requests.size(); ++r) {
        first_slot[r] = int(next);
        next += std::max<size_t>(1, requests[r].continuations.size());
        const auto& ctx = requests[r].context;
        const int prefix = static_cast<int>(ctx.size()) - 1;
        if (prefix == 0) continue;
        if (tokens.size() + size_t(prefix) > budget) run(GptInference::Logits::None, {});
        tokens.insert(tokens.end(), ctx.begin(), ctx.end() - 1);
        slot.push_back(first_slot[r]);
        start.push_back(0);
        count.push_back(prefix);
    }
    run(GptInference::Logits::None, {});
    for (size_t r = 0; r < requests.size(); ++r) {
        const int prefix = static_cast<int>(requests[r].context.size()) - 1;
        for (size_t c = 1; c < requests[r].continuations.size(); ++c) {
            inf.copy_prefix(first_slot[r], first_slot[r] + int(c), prefix);
        }
    }

    std::vector<std::vector<ContinuationLogLikelihood>> scores(requests.size());
    auto score_rows = [&](const float* logits) {
        size_t row = 0;
        for (size_t i = 0; i < owner.size(); ++i) {
            const auto [r, c] = owner[i];
            const std::vector<int32_t>& cont = requests[r].continuations[c];
            for (size_t t = 0; t < cont.size(); ++t, ++row) {
                hf::add_token_score(logits + row * size_t(config.padded_vocab_size),
                                    config.vocab_size, cont[t], scores[r][c]);
            }
        }
        owner.clear();
    };
    for (size_t r = 0; r < requests.size(); ++r) {
        const ScoreRequest& req = requests[r];
        scores[r].resize(req.continuations.size());
        for (size_t c = 0; c < req.continuations.size(); ++c) {
            const std::vector<int32_t>& cont = req.continuations[c];
            if (tokens.size() + cont.size() > budget) run(GptInference::Logits::All, score_rows);
            tokens.push_back(req.context.back());
            tokens.insert(tokens.end(), cont.begin(), cont.end() - 1);
            slot.push_back(first_slot[r] + static_cast<int>(c));
            start.push_back(static_cast<int>(req.context.size()) - 1);
            count.push_back(static_cast<int>(cont.size()));
            owner.emplace_back(r, c);
        }
    }
    run(GptInference::Logits::All, score_rows);
    return scores;
}

// New positions per forward call: enough for matrix products near their peak, few enough
// that the logits buffer ([tokens, padded vocabulary]) stays small.
constexpr int kGreenmoeChunkTokens = 512;

class GreenmoeDecodeBatch : public DecodeBatch {
  public:
    GreenmoeDecodeBatch(const GptModel& model, int batch, int max_len)
        : vocab_(model.config().vocab_size),
          padded_(model.config().padded_vocab_size),
          inference_(model, batch, max_len, std::min(kGreenmoeChunkTokens, batch * max_len)),
          length_(size_t(batch), 0),
          logits_(size_t(batch) * size_t(vocab_)) {}

    // Long prompts go through in chunks of at most max_tokens() positions over all
    // sequences; a sequence's logits are kept from the call that ran its last token.
    const std::vector<float>& step(const std::vector<std::vector<int32_t>>& ids) override {
        check(ids.size() <= length_.size(), "decode: {} sequences in a batch of {}", ids.size(),
              length_.size());
        std::vector<size_t> done(ids.size(), 0);
        for (size_t s = 0; s < ids.size(); ++s) {
            check(length_[s] + ids[s].size() <= size_t(inference_.max_len()),
                  "decode: sequence {} would hold {} positions, more than the {} allocated", s,
                  length_[s] + ids[s].size(), inference_.max_len());
        }
        const size_t budget = size_t(inference_.max_tokens());
        while (true) {
            std::vector<int> tokens, slot, start, count;
            std::vector<size_t> finishing;
            for (size_t s = 0; s < ids.size() && tokens.size() < budget; ++s) {
                const size_t left = ids[s].size() - done[s];
                if (left == 0) continue;
                const size_t take = std::min(left, budget - tokens.size());
                tokens.insert(tokens.end(), ids[s].begin() + ptrdiff_t(done[s]),
                              ids[s].begin() + ptrdiff_t(done[s] + take));
                slot.push_back(int(s));
                start.push_back(int(length_[s]));
                count.push_back(int(take));
                done[s] += take;
                length_[s] += int(take);
                finishing.push_back(done[s] == ids[s].size() ? s : SIZE_MAX);
            }
            if (slot.empty()) break;
            const float* last =
                inference_.forward(tokens.data(), slot.data(), start.data(), count.data(),
                                   int(slot.size()), GptInference::Logits::Last);
            for (size_t i = 0; i < finishing.size(); ++i) {
                if (finishing[i] == SIZE_MAX) continue;
                std::copy_n(last + i * size_t(padded_), vocab_,
                            logits_.begin() + ptrdiff_t(finishing[i] * size_t(vocab_)));
            }
        }
        return logits_;
    }
    int length(int s) const override { return length_.at(size_t(s)); }

  private:
    int vocab_, padded_;
    GptInference inference_;
    std::vector<int> length_;
    std::vector<float> logits_;
};

std::unique_ptr<DecodeBatch> GreenmoeLanguageModel::start_decoding(int batch, int max_len) const {
    check(batch >= 1 && max_len >= 1 && max_len <= max_length(),
          "decode: {} sequences of up to {} positions (the model's window is {})", batch, max_len,
          max_length());
    inference_.reset();  // scoring's cache is not needed while generating
    return std::make_unique<GreenmoeDecodeBatch>(*model_, batch, max_len);
}

// Routed experts are the tensors with one row per expert (MoE MLPs and MoA's query and
// output experts); a token uses choices_per_token() of an MLP's and top_k of MoA's.
ModelSize GreenmoeLanguageModel::size() const {
    const GptConfig& c = model_->config();
    ModelSize size;
    size.parameters = int64_t(model_->num_parameters());
    size.active_parameters = size.parameters;
    for (int l = 0; l < c.n_layer; ++l) {
        const int experts = c.mlp_experts(l);
        if (experts > 0) size.experts_per_moe_layer.push_back(experts);
    }
    if (c.mlp != "dense") size.top_k = c.choices_per_token();
    for (const ParamSpec& spec : model_->layout().specs()) {
        const bool mlp_expert = spec.name.find(".mlp.experts.") != std::string::npos;
        const bool moa_expert = spec.name.find("_experts.") != std::string::npos;
        if (!mlp_expert && !moa_expert) continue;
        const int64_t experts = spec.shape.front();
        const int64_t used = mlp_expert ? c.choices_per_token() : c.top_k;
        size.active_parameters -= int64_t(spec.numel) / experts * (experts - used);
    }
    return size;
}

class HfLanguageModel : public LanguageModel {
  public:
    HfLanguageModel(const fs::path& path, const std::string& tokenizer, const fs::path& adapter)
        : name_(adapter.empty() ? path.string() : path.string() + " + " + adapter.string()),
          model_(hf::HfModel::load_with_adapter(path, adapter)),
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
    std::vector<std::vector<ContinuationLogLikelihood>> score_batch(
        const std::vector<ScoreRequest>& requests) const override {
        for (const ScoreRequest& r : requests) {
            check_request(r.context, r.continuations, max_length());
        }
        return hf::score_requests(model_, requests);
    }

    int vocab_size() const override { return model_.config().vocab_size; }
    std::string decode(std::span<const int32_t> ids) const override {
        return tokenizer_.decode(known_ids(ids, tokenizer_.vocab_size()));
    }
    std::vector<int32_t> encode_prompt(const std::string& text) const override {
        std::vector<int32_t> ids;
        for (const int id : tokenizer_.encode(text, true)) ids.push_back(id);
        if (ids.empty()) ids.push_back(greenmoe::empty_context_token(model_, tokenizer_));
        return ids;
    }
    std::vector<int32_t> stop_tokens() const override {
        std::vector<int32_t> stop = model_.config().eos_token_ids;
        if (tokenizer_.eos_id() &&
            std::find(stop.begin(), stop.end(), *tokenizer_.eos_id()) == stop.end()) {
            stop.push_back(*tokenizer_.eos_id());
        }
        return stop;
    }
    std::unique_ptr<DecodeBatch> start_decoding(int batch, int max_len) const override;
    ModelSize size() const override;

  private:
    std::string name_;
    hf::HfModel model_;
    hf::Tokenizer tokenizer_;
    std::vector<int32_t> prefix_;
};

std::unique_ptr<DecodeBatch> HfLanguageModel::start_decoding(int batch, int max_len) const {
    check(batch >= 1 && max_len >= 1 && max_len <= max_length(),
          "decode: {} sequences of up to {} positions (the model's window is {})", batch, max_len,
          max_length());
    return hf_decode_batch(model_, batch, max_len);
}

// Every architecture's experts are SwiGLU (gate, up, down: 3 · hidden · width each), without
// biases, so a layer's routed experts are n · 3 · hidden · width and a token reads top_k.
ModelSize HfLanguageModel::size() const {
    const hf::ModelConfig& c = model_.config();
    ModelSize size;
    size.parameters = model_.parameter_count();
    size.active_parameters = size.parameters;
    const int64_t per_expert = 3 * int64_t(c.hidden_size) * c.moe.expert_intermediate;
    for (const hf::LayerConfig& layer : c.layers) {
        if (layer.n_experts == 0) continue;
        size.experts_per_moe_layer.push_back(layer.n_experts);
        size.active_parameters -= per_expert * (layer.n_experts - c.moe.top_k);
    }
    if (!size.experts_per_moe_layer.empty()) size.top_k = c.moe.top_k;
    return size;
}

}  // namespace

std::unique_ptr<LanguageModel> open_language_model(const fs::path& model,
                                                   const std::string& tokenizer,
                                                   const fs::path& adapter) {
    if (adapter.empty()) {
        if (const auto found = hf::find_lora_adapter(model))
            return open_language_model(hf::lora_adapter_base(*found), tokenizer, *found);
    }
    if (is_hf_engine_model(model)) {
        return std::make_unique<HfLanguageModel>(model, tokenizer, adapter);
    }
    usage_check(adapter.empty(),
                "--adapter {}: LoRA adapters apply to Hugging Face models; {} is a greenmoe "
                "model (fine-tune it with `greenmoe train --init-from`)",
                adapter.string(), model.string());
    return std::make_unique<GreenmoeLanguageModel>(model, tokenizer);
}

}  // namespace greenmoe

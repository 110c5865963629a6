// Log-likelihood of continuations after a shared context (see scoring.h).
#include "greenmoe/hf/scoring.h"

#include <algorithm>
#include <cmath>

#include "greenmoe/core/error.h"

namespace greenmoe::hf {

void add_token_score(const float* row, int vocab, int32_t token, ContinuationScore& score) {
    const float top = *std::max_element(row, row + vocab);
    double sum = 0.0;
    for (int v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - top);
    score.log_likelihood += double(row[token]) - top - std::log(sum);
    const auto best = std::max_element(row, row + vocab) - row;
    score.greedy = score.greedy && best == token;
    ++score.tokens;
}

std::vector<ContinuationScore> score_continuations(
    const HfModel& model, std::span<const int32_t> context,
    const std::vector<std::vector<int32_t>>& continuations) {
    check(!context.empty(), "score_continuations: the context is empty (give at least one token)");
    const int vocab = model.config().vocab_size;
    KvCache context_cache;
    const std::vector<float> context_logits = model.forward(context, context_cache);
    const float* last = context_logits.data() + (context.size() - 1) * static_cast<size_t>(vocab);

    // Continuation c's tokens but its last feed the cache copy; their logits predict the rest.
    std::vector<KvCache> caches(continuations.size(), context_cache);
    std::vector<std::span<const int32_t>> inputs;
    std::vector<KvCache*> cache_ptrs;
    for (size_t c = 0; c < continuations.size(); ++c) {
        check(!continuations[c].empty(), "score_continuations: continuation {} is empty", c);
        inputs.emplace_back(continuations[c].data(), continuations[c].size() - 1);
        cache_ptrs.push_back(&caches[c]);
    }
    const auto logits = model.forward_batch(inputs, cache_ptrs);
    std::vector<ContinuationScore> scores(continuations.size());
    for (size_t c = 0; c < continuations.size(); ++c) {
        const auto& cont = continuations[c];
        add_token_score(last, vocab, cont[0], scores[c]);
        for (size_t t = 1; t < cont.size(); ++t) {
            add_token_score(logits[c].data() + (t - 1) * static_cast<size_t>(vocab), vocab, cont[t],
                            scores[c]);
        }
    }
    return scores;
}

}  // namespace greenmoe::hf

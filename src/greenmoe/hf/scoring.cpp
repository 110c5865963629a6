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

std::vector<std::vector<ContinuationScore>> score_requests(
    const HfModel& model, const std::vector<ScoreRequest>& requests) {
    const auto vocab = static_cast<size_t>(model.config().vocab_size);
    std::vector<KvCache> context_caches(requests.size());
    std::vector<std::span<const int32_t>> inputs;
    std::vector<KvCache*> cache_ptrs;
    for (size_t r = 0; r < requests.size(); ++r) {
        check(!requests[r].context.empty(),
              "score_continuations: the context is empty (give at least one token)");
        inputs.emplace_back(requests[r].context);
        cache_ptrs.push_back(&context_caches[r]);
    }
    // The last context position's logits predict each continuation's first token.
    const auto last = model.forward_batch(inputs, cache_ptrs, HfModel::LogitRows::Last);

    // Continuation c's tokens but its last feed the cache copy; their logits predict the rest.
    std::vector<KvCache> caches;
    std::vector<std::pair<size_t, size_t>> owner;  // (request, continuation) of each copy
    for (size_t r = 0; r < requests.size(); ++r) {
        for (size_t c = 0; c < requests[r].continuations.size(); ++c) {
            check(!requests[r].continuations[c].empty(),
                  "score_continuations: continuation {} is empty", c);
            caches.push_back(context_caches[r]);
            owner.emplace_back(r, c);
        }
        context_caches[r] = KvCache{};  // its copies hold what is needed
    }
    inputs.clear();
    cache_ptrs.clear();
    for (size_t i = 0; i < owner.size(); ++i) {
        const auto& cont = requests[owner[i].first].continuations[owner[i].second];
        inputs.emplace_back(cont.data(), cont.size() - 1);
        cache_ptrs.push_back(&caches[i]);
    }
    const auto logits = model.forward_batch(inputs, cache_ptrs);
    std::vector<std::vector<ContinuationScore>> scores(requests.size());
    for (size_t r = 0; r < requests.size(); ++r) {
        scores[r].resize(requests[r].continuations.size());
    }
    for (size_t i = 0; i < owner.size(); ++i) {
        const auto [r, c] = owner[i];
        const auto& cont = requests[r].continuations[c];
        ContinuationScore& score = scores[r][c];
        add_token_score(last[r].data(), int(vocab), cont[0], score);
        for (size_t t = 1; t < cont.size(); ++t) {
            add_token_score(logits[i].data() + (t - 1) * vocab, int(vocab), cont[t], score);
        }
    }
    return scores;
}

std::vector<ContinuationScore> score_continuations(
    const HfModel& model, std::span<const int32_t> context,
    const std::vector<std::vector<int32_t>>& continuations) {
    return std::move(
        score_requests(model, {ScoreRequest{{context.begin(), context.end()}, continuations}})
            .front());
}

}  // namespace greenmoe::hf

// Log-likelihood of continuations after a shared context: the primitive benchmark tasks use
// (one context, several candidate endings), for one request or a batch of them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "greenmoe/hf/hf_model.h"

namespace greenmoe::hf {

struct ContinuationScore {
    double log_likelihood = 0.0;  // Σ log P(token | everything before it)
    bool greedy = true;           // every token was the argmax of its prediction
    int64_t tokens = 0;
};

// Adds log softmax(row)[token] (in double) to `score`, and whether token was row's argmax.
// row holds `vocab` logits.
void add_token_score(const float* row, int vocab, int32_t token, ContinuationScore& score);

// One context and the continuations scored after it; all non-empty.
struct ScoreRequest {
    std::vector<int32_t> context;
    std::vector<std::vector<int32_t>> continuations;
};

// Every request's context runs once, all contexts in one pass (only their last position's
// logits computed); then each continuation continues a copy of its context's KV cache, all
// continuations of all requests in a second pass.
std::vector<std::vector<ContinuationScore>> score_requests(
    const HfModel& model, const std::vector<ScoreRequest>& requests);

// One request.
std::vector<ContinuationScore> score_continuations(
    const HfModel& model, std::span<const int32_t> context,
    const std::vector<std::vector<int32_t>>& continuations);

}  // namespace greenmoe::hf

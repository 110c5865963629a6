// Log-likelihood of continuations after a shared context: the primitive benchmark tasks use
// (one context, several candidate endings).
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

// The context runs once; each continuation continues a copy of its KV cache, all of them in
// one batch. The context and every continuation must be non-empty.
std::vector<ContinuationScore> score_continuations(
    const HfModel& model, std::span<const int32_t> context,
    const std::vector<std::vector<int32_t>>& continuations);

}  // namespace greenmoe::hf

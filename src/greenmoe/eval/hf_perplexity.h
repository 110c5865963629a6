// Token-level perplexity of a token sequence under a Hugging Face model, with the sliding
// window Hugging Face's perplexity guide uses when the text is longer than the context.
#pragma once

#include <cstdint>
#include <span>

#include "greenmoe/hf/hf_model.h"

namespace greenmoe {

struct PerplexityOptions {
    int context = 0;  // window length (0: max_position_embeddings)
    int stride = 0;   // window start step (0: the window length, no overlap)
    bool progress = false;
};

struct PerplexityResult {
    double nll_sum = 0.0;  // Σ −log P(token | the window's tokens before it)
    int64_t tokens = 0;    // tokens predicted: all but the first
    int64_t windows = 0;
    int context = 0, stride = 0;
    double seconds = 0.0;
    double mean_nll() const { return tokens > 0 ? nll_sum / double(tokens) : 0.0; }
    double perplexity() const;
};

// Windows [begin, begin + context) for begin = 0, stride, 2·stride, … until one reaches the
// end; each token after the first is predicted once, by the first window that covers it past
// the previous window's end (so with stride < context each prediction after the first
// window sees at least context − stride tokens before it). Needs ≥ 2 tokens.
PerplexityResult evaluate_perplexity(const hf::HfModel& model, std::span<const int32_t> tokens,
                                     const PerplexityOptions& options = {});

}  // namespace greenmoe

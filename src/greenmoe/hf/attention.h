// Causal self-attention of the Hugging Face engine: the standard projections (GQA, biases,
// q/k norms, sliding window) and the shared core that attends over a sequence's KV cache.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/hf/hf_config.h"
#include "greenmoe/hf/hf_weights.h"
#include "greenmoe/hf/kv_cache.h"
#include "greenmoe/hf/rope.h"

namespace greenmoe::hf {

// Rows [begin, begin + count) of a batch belong to one sequence, whose earlier positions are
// in `cache`; the rows continue it at position cache->length().
struct Segment {
    int64_t begin = 0, count = 0;
    LayerCache* cache = nullptr;
};

// Scores of query position `pos` over keys 0 … cols − 1 → the causal attention weights in
// place: softmax over keys first … pos (first = pos − window + 1 with a sliding window, else
// 0) with the maximum subtracted and the sum in double, zero elsewhere.
void causal_softmax_row(float* row, int64_t pos, int window, int64_t cols);

// q [n, q_heads, k_dim] for positions cache.length() − n … (the new keys and values are
// already in the cache) → out [n, q_heads, v_dim]. Query head h reads key/value head
// h / (q_heads / cache.heads). window 0: full causal attention.
void attend(const float* q, int64_t n, int64_t q_heads, const LayerCache& cache, double scale,
            int window, float* out);

// x [rows, hidden] (normalized), the rows of every segment → out [rows, hidden]; appends the
// new keys and values to each segment's cache.
void standard_attention(const ModelConfig& config, const AttentionWeights& w, const Rope& rope,
                        int window, const float* x, int64_t rows,
                        const std::vector<Segment>& segments, float* out);

}  // namespace greenmoe::hf

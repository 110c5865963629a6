// Sampling text from a model: temperature and top-k over the real vocabulary.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/model/gpt.h"

namespace greenmoe {

struct SampleOptions {
    int max_new_tokens = 64;
    float temperature = 1.0f;
    int top_k = 50;  // 0 = the whole vocabulary
    uint64_t seed = 0;
    int stop_token = -1;  // stop after emitting this token (-1: never)
};

// Picks a token from logits[V] (V real entries) with a uniform u in [0, 1).
// temperature 0 is greedy (argmax).
int sample_token(const float* logits, int V, float temperature, int top_k, float u);

// Extends prompt by up to max_new_tokens tokens (B = 1) with a KV cache: the prompt runs
// once, then each step runs one position. Random draws are keyed by (seed, position), so
// the same seed gives the same text. When the text reaches block_size the cache restarts
// from its last block_size / 2 tokens (one prefill per block_size / 2 new tokens).
// Routing is evaluation mode without capacity limits. Returns only the new tokens.
std::vector<int> generate(const GptModel& model, const std::vector<int>& prompt,
                          const SampleOptions& options);

// The same without a cache: each step re-runs the model on the last min(block_size,
// max_seq) tokens, O(N²) in the length (the reference for tests and the benchmark). Puts
// the model in evaluation mode without capacity limits and restores training mode and
// the limits afterwards.
std::vector<int> generate_recompute(GptModel& model, const std::vector<int>& prompt,
                                    const SampleOptions& options);

}  // namespace greenmoe

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

// Extends prompt by up to max_new_tokens tokens, re-running the model on the last
// block_size tokens each step (B = 1). Random draws are keyed by (seed, position), so
// the same seed gives the same text. Returns only the new tokens.
std::vector<int> generate(GptModel& model, const std::vector<int>& prompt,
                          const SampleOptions& options);

}  // namespace greenmoe

// Text generation with a Hugging Face model: greedy or sampled (temperature, top-k, top-p,
// seed) over the KV cache, stopping at the model's end-of-sequence tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "greenmoe/hf/hf_model.h"

namespace greenmoe::hf {

struct GenerateOptions {
    int max_new_tokens = 64;
    double temperature = 1.0;  // 0: greedy
    int top_k = 0;             // 0: no limit
    double top_p = 1.0;        // nucleus: the fewest most likely tokens holding this mass
    uint64_t seed = 0;
    // Generation stops after emitting one of these (the config's eos_token_id by default).
    std::vector<int32_t> stop_tokens;
};

// Picks a token from logits[vocab] with a uniform u in [0, 1): temperature, then top-k, then
// top-p, as transformers applies them.
int32_t pick_token(const float* logits, int vocab, const GenerateOptions& options, double u);

// Extends the prompt (non-empty): it runs once, then each new token is one position. The
// draws are keyed by (seed, position), so a seed gives the same text. `on_token` sees each
// new token as it comes. Returns the new tokens.
std::vector<int32_t> generate(const HfModel& model, std::span<const int32_t> prompt,
                              const GenerateOptions& options,
                              const std::function<void(int32_t)>& on_token = {});

}  // namespace greenmoe::hf

// How a next token is chosen from logits, as transformers chooses it: greedy or sampled
// (temperature, top-k, top-p, seed). The generation loop is eval/text_generation.h.
#pragma once

#include <cstdint>
#include <vector>

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

}  // namespace greenmoe::hf

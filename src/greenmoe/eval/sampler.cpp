// Top-k / temperature sampling (see sampler.h).
#include "greenmoe/eval/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"

namespace greenmoe {

int sample_token(const float* logits, int V, float temperature, int top_k, float u) {
    if (temperature <= 0.0f) return static_cast<int>(std::max_element(logits, logits + V) - logits);
    std::vector<int> order(V);
    std::iota(order.begin(), order.end(), 0);
    const int k = (top_k <= 0 || top_k > V) ? V : top_k;
    // Ties broken by token id so the choice is reproducible.
    auto by_logit = [&](int a, int b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    };
    std::partial_sort(order.begin(), order.begin() + k, order.end(), by_logit);
    const double max_logit = logits[order[0]];
    std::vector<double> probs(k);
    double total = 0.0;
    for (int i = 0; i < k; ++i) {
        probs[i] = std::exp((logits[order[i]] - max_logit) / temperature);
        total += probs[i];
    }
    double cumulative = 0.0;
    const double target = static_cast<double>(u) * total;
    for (int i = 0; i < k; ++i) {
        cumulative += probs[i];
        if (target < cumulative) return order[i];
    }
    return order[k - 1];
}

std::vector<int> generate(GptModel& model, const std::vector<int>& prompt,
                          const SampleOptions& options) {
    check(!prompt.empty(), "generate: the prompt must hold at least one token");
    const int window = std::min(model.max_seq(), model.config().block_size);
    const int V = model.config().vocab_size, Vp = model.config().padded_vocab_size;
    std::vector<int> context = prompt;
    std::vector<int> out;
    const uint64_t key = rng_key(options.seed, 0x73616d70 /* "samp" */);
    for (int i = 0; i < options.max_new_tokens; ++i) {
        const int T = std::min<int>(window, static_cast<int>(context.size()));
        const int* tokens = context.data() + context.size() - T;
        model.forward(tokens, nullptr, 1, T);
        const float* last = model.logits() + static_cast<size_t>(T - 1) * Vp;
        const int next = sample_token(last, V, options.temperature, options.top_k,
                                      rng_uniform(key, context.size()));
        context.push_back(next);
        out.push_back(next);
        if (next == options.stop_token) break;
    }
    return out;
}

}  // namespace greenmoe

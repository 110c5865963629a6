// Top-k / temperature sampling (see sampler.h).
#include "greenmoe/eval/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/model/gpt_inference.h"

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

namespace {
constexpr uint64_t kSampleStream = 0x73616d70;  // "samp"
}

std::vector<int> generate(const GptModel& model, const std::vector<int>& prompt,
                          const SampleOptions& options) {
    check(!prompt.empty(), "generate: the prompt must hold at least one token");
    const int block = model.config().block_size;
    const int V = model.config().vocab_size;
    GptInference inference(model, 1, block, block);
    std::vector<int> context = prompt;
    std::vector<int> out;
    const uint64_t key = rng_key(options.seed, kSampleStream);
    // The cache holds context[cached_from, cached_from + cached_len).
    size_t cached_from = context.size() > size_t(block) ? context.size() - block : 0;
    int cached_len = 0;
    const float* logits = nullptr;
    for (int i = 0; i < options.max_new_tokens; ++i) {
        if (cached_len == 0) {  // (re)fill the cache from the tail of the text
            const int T = static_cast<int>(context.size() - cached_from);
            const int slot = 0, start = 0;
            logits = inference.forward(context.data() + cached_from, &slot, &start, &T, 1,
                                       GptInference::Logits::Last);
            cached_len = T;
        }
        const int next = sample_token(logits, V, options.temperature, options.top_k,
                                      rng_uniform(key, context.size()));
        context.push_back(next);
        out.push_back(next);
        if (next == options.stop_token || i + 1 == options.max_new_tokens) break;
        if (cached_len == block) {  // full: keep the last half and prefill it next step
            cached_from = context.size() - block / 2;
            cached_len = 0;
            continue;
        }
        const int slot = 0, start = cached_len, count = 1;
        logits = inference.forward(&context.back(), &slot, &start, &count, 1,
                                   GptInference::Logits::Last);
        cached_len += 1;
    }
    return out;
}

std::vector<int> generate_recompute(GptModel& model, const std::vector<int>& prompt,
                                    const SampleOptions& options) {
    check(!prompt.empty(), "generate: the prompt must hold at least one token");
    const int window = std::min(model.max_seq(), model.config().block_size);
    const int V = model.config().vocab_size, Vp = model.config().padded_vocab_size;
    const bool was_training = model.training();
    model.set_training(false);
    model.set_capacity_limits(false);
    std::vector<int> context = prompt;
    std::vector<int> out;
    const uint64_t key = rng_key(options.seed, kSampleStream);
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
    model.set_training(was_training);
    model.set_capacity_limits(true);
    return out;
}

}  // namespace greenmoe

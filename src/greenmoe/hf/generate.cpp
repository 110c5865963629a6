// Text generation with a Hugging Face model (see generate.h).
#include "greenmoe/hf/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"

namespace greenmoe::hf {

namespace {

constexpr uint64_t kGenerateStream = 0x68665f67656eULL;  // "hf_gen"

}  // namespace

int32_t pick_token(const float* logits, int vocab, const GenerateOptions& o, double u) {
    if (o.temperature <= 0.0) {
        return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
    }
    std::vector<int32_t> order(static_cast<size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    size_t keep = order.size();
    if (o.top_k > 0) keep = std::min(keep, static_cast<size_t>(o.top_k));
    std::vector<double> p(keep);
    const double top = logits[order[0]];
    double sum = 0.0;
    for (size_t i = 0; i < keep; ++i) {
        p[i] = std::exp((logits[order[i]] - top) / o.temperature);
        sum += p[i];
    }
    if (o.top_p < 1.0) {
        double mass = 0.0;
        size_t n = 0;
        while (n < keep && mass < o.top_p * sum) mass += p[n++];
        keep = std::max<size_t>(n, 1);
        sum = std::accumulate(p.begin(), p.begin() + static_cast<ptrdiff_t>(keep), 0.0);
    }
    double target = u * sum;
    for (size_t i = 0; i < keep; ++i) {
        target -= p[i];
        if (target < 0.0) return order[i];
    }
    return order[keep - 1];
}

std::vector<int32_t> generate(const HfModel& model, std::span<const int32_t> prompt,
                              const GenerateOptions& o,
                              const std::function<void(int32_t)>& on_token) {
    check(!prompt.empty(), "generate: the prompt is empty (give at least one token)");
    const int vocab = model.config().vocab_size;
    const uint64_t key = rng_key(o.seed, kGenerateStream);
    KvCache cache;
    std::vector<float> logits = model.forward(prompt, cache);
    const float* last = logits.data() + (prompt.size() - 1) * static_cast<size_t>(vocab);
    std::vector<int32_t> out;
    for (int step = 0; step < o.max_new_tokens; ++step) {
        const auto position = static_cast<uint64_t>(cache.length());
        const double u = static_cast<double>(rng_u64(key, position) >> 11) * 0x1.0p-53;
        const int32_t next = pick_token(last, vocab, o, u);
        out.push_back(next);
        if (on_token) on_token(next);
        if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), next) != o.stop_tokens.end()) {
            break;
        }
        if (step + 1 == o.max_new_tokens) break;
        const int32_t one[] = {next};
        logits = model.forward(one, cache);
        last = logits.data();
    }
    return out;
}

}  // namespace greenmoe::hf

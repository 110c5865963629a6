// Sliding-window perplexity (see hf_perplexity.h).
#include "greenmoe/eval/hf_perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"

namespace greenmoe {

namespace {

// −log softmax(row)[token], in double.
double token_nll(const float* row, int vocab, int32_t token) {
    const float top = *std::max_element(row, row + vocab);
    double sum = 0.0;
    for (int v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - top);
    return std::log(sum) - (double(row[token]) - top);
}

}  // namespace

double PerplexityResult::perplexity() const {
    return std::exp(mean_nll());
}

PerplexityResult evaluate_perplexity(const hf::HfModel& model, std::span<const int32_t> tokens,
                                     const PerplexityOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    const int vocab = model.config().vocab_size;
    PerplexityResult r;
    r.context = options.context > 0 ? options.context : model.config().rope.max_position;
    check(r.context >= 2,
          "perplexity: {} gives no context length (max_position_embeddings); pass --context",
          model.config().source.string());
    r.stride = options.stride > 0 ? std::min(options.stride, r.context) : r.context;
    check(tokens.size() >= 2, "perplexity: the text has {} token(s); it needs at least 2",
          tokens.size());
    const size_t n = tokens.size(), context = size_t(r.context), stride = size_t(r.stride);
    std::unique_ptr<ProgressBar> bar;
    if (options.progress) bar = std::make_unique<ProgressBar>("perplexity", n - 1, "tokens");
    size_t previous_end = 0;
    for (size_t begin = 0; previous_end < n; begin += stride) {
        const size_t end = std::min(begin + context, n);
        const auto window = tokens.subspan(begin, end - begin);
        const std::vector<float> logits = model.logits(window);
        // Position j − 1 predicts token j; only tokens past the previous window count.
        for (size_t j = std::max<size_t>(1, previous_end - begin); j < window.size(); ++j) {
            r.nll_sum += token_nll(logits.data() + (j - 1) * size_t(vocab), vocab, window[j]);
            ++r.tokens;
        }
        ++r.windows;
        previous_end = end;
        if (bar) bar->update(end - 1, fmt::format("ppl {:.4g}", r.perplexity()));
    }
    if (bar) bar->finish(fmt::format("ppl {:.4g}", r.perplexity()));
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace greenmoe

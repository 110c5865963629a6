// HellaSwag for Hugging Face models (see hf_hellaswag.h).
#include "greenmoe/eval/hf_hellaswag.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/eval/hf_text.h"
#include "greenmoe/hf/scoring.h"

namespace greenmoe {

namespace {

struct Request {
    std::vector<int32_t> context;
    std::vector<std::vector<int32_t>> endings;  // four
    bool truncated = false;
};

std::vector<int32_t> to_ids(const std::vector<int>& v) {
    return std::vector<int32_t>(v.begin(), v.end());
}

// Completion style: context and " " + ending encoded apart.
Request completion_request(const hf::Tokenizer& tokenizer, const std::vector<int32_t>& prefix,
                           const std::string& context, const std::array<std::string, 4>& endings) {
    Request r;
    r.context = prefix;
    const auto ctx = tokenizer.encode(context, false);
    r.context.insert(r.context.end(), ctx.begin(), ctx.end());
    for (const auto& e : endings) {
        std::string text = " ";
        text += e;
        r.endings.push_back(to_ids(tokenizer.encode(text, false)));
    }
    return r;
}

// Harness style: the continuation is what encoding context + " " + ending adds past the
// context's own encoding; trailing spaces of the context move to the continuation, as the
// harness's _encode_pair moves them.
Request harness_request(const hf::Tokenizer& tokenizer, const std::vector<int32_t>& prefix,
                        const std::string& text, const std::array<std::string, 4>& endings) {
    const size_t kept = text.find_last_not_of(' ') + 1;  // npos + 1 = 0: all spaces
    const std::string context = text.substr(0, kept);
    Request r;
    r.context = prefix;
    const auto ctx = tokenizer.encode(context, false);
    r.context.insert(r.context.end(), ctx.begin(), ctx.end());
    for (const auto& e : endings) {
        std::string whole_text = text;
        whole_text += " ";
        whole_text += e;
        const auto whole = tokenizer.encode(whole_text, false);
        const size_t skip = std::min(ctx.size(), whole.size());
        r.endings.emplace_back(whole.begin() + static_cast<ptrdiff_t>(skip), whole.end());
    }
    return r;
}

// Fills an empty context, checks the endings, and cuts the context's front to fit `limit`.
void fit(Request& r, int32_t empty_context_token, size_t limit) {
    if (r.context.empty()) r.context.push_back(empty_context_token);
    size_t longest = 0;
    for (size_t i = 0; i < r.endings.size(); ++i) {
        check(!r.endings[i].empty(), "hellaswag: ending {} encodes to no tokens", i);
        if (limit > 1 && r.endings[i].size() >= limit) r.endings[i].resize(limit - 1);
        longest = std::max(longest, r.endings[i].size());
    }
    if (limit > 0 && r.context.size() > limit - longest) {
        r.context.erase(r.context.begin(),
                        r.context.end() - static_cast<ptrdiff_t>(limit - longest));
        r.truncated = true;
    }
}

}  // namespace

HellaSwagResult evaluate_hellaswag_hf(const hf::HfModel& model, const hf::Tokenizer& tokenizer,
                                      const std::vector<HellaSwagItem>& items,
                                      const HellaSwagOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> prefix = bos_prefix(tokenizer);
    const int32_t empty_token = empty_context_token(model, tokenizer);
    const auto limit = static_cast<size_t>(std::max(0, model.config().rope.max_position));
    std::unique_ptr<ProgressBar> bar;
    if (options.progress) bar = std::make_unique<ProgressBar>("hellaswag", items.size(), "items");
    HellaSwagResult result;
    result.scores.resize(items.size());
    // options.items_per_batch items go to the engine together (their contexts in one pass,
    // their endings in another); each item's two styles share one request when equal.
    const size_t per_batch = static_cast<size_t>(std::max(1, options.items_per_batch));
    for (size_t begin = 0; begin < items.size(); begin += per_batch) {
        const size_t end = std::min(items.size(), begin + per_batch);
        std::vector<hf::ScoreRequest> requests;
        // Request index of each item's two styles (the same index when they are equal).
        std::vector<size_t> completion_at(end - begin), harness_at(end - begin);
        std::vector<bool> truncated(end - begin);
        for (size_t i = begin; i < end; ++i) {
            const HellaSwagItem& item = items[i];
            Request completion =
                completion_request(tokenizer, prefix, item.raw_context, item.raw_endings);
            Request harness = harness_request(tokenizer, prefix, item.context, item.endings);
            fit(completion, empty_token, limit);
            fit(harness, empty_token, limit);
            truncated[i - begin] = completion.truncated || harness.truncated;
            const bool same =
                harness.context == completion.context && harness.endings == completion.endings;
            requests.push_back({std::move(completion.context), std::move(completion.endings)});
            completion_at[i - begin] = harness_at[i - begin] = requests.size() - 1;
            if (!same) {
                requests.push_back({std::move(harness.context), std::move(harness.endings)});
                harness_at[i - begin] = requests.size() - 1;
            }
        }
        const auto scores = hf::score_requests(model, requests);
        for (size_t i = begin; i < end; ++i) {
            const auto& c = scores[completion_at[i - begin]];
            const auto& h = scores[harness_at[i - begin]];
            HellaSwagScore& s = result.scores[i];
            for (size_t j = 0; j < 4; ++j) {
                s.sum_loss[j] = -c[j].log_likelihood;
                s.ending_tokens[j] = static_cast<int>(c[j].tokens);
                s.loglik[j] = h[j].log_likelihood;
            }
            s.truncated = truncated[i - begin];
            finish_hellaswag_score(items[i], s, result);
        }
        if (bar) bar->update(end, fmt::format("acc_norm {:.4f}", result.acc_norm()));
        if (options.on_batch) options.on_batch(static_cast<int64_t>(end), items.size());
    }
    if (bar) bar->finish(fmt::format("acc_norm {:.4f}", result.acc_norm()));
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
}

}  // namespace greenmoe

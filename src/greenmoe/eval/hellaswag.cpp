// HellaSwag scoring (see hellaswag.h): tokenise, run each context once into the KV cache,
// run the four endings from it, and sum the endings' token losses.
#include "greenmoe/eval/hellaswag.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/io/system_memory.h"
#include "greenmoe/model/gpt_inference.h"
#include "greenmoe/nn/cross_entropy.h"
#include "greenmoe/text/python_str.h"

namespace greenmoe {

namespace {

// The token sequences one scoring style needs for one item.
struct Request {
    std::vector<int> context;
    std::array<std::vector<int>, 4> endings;
    bool truncated = false;
};

// Token sums of one request: loss summed over each ending's tokens, in token order.
struct Sums {
    std::array<double, 4> loss{};
    std::array<int, 4> tokens{};
};

Request make_request(const Gpt2Tokenizer& tokenizer, const std::string& context,
                     const std::array<std::string, 4>& endings, int block) {
    Request r;
    r.context = tokenizer.encode_ordinary(context);
    // An empty context still needs a position whose logits predict the first ending token.
    if (r.context.empty()) r.context.push_back(tokenizer.eot_token());
    size_t longest = 0;
    for (size_t i = 0; i < 4; ++i) {
        r.endings[i] = tokenizer.encode_ordinary(" " + endings[i]);
        check(!r.endings[i].empty(), "hellaswag: ending {} encodes to no tokens", i);
        if (r.endings[i].size() >= size_t(block)) r.endings[i].resize(size_t(block) - 1);
        longest = std::max(longest, r.endings[i].size());
    }
    const size_t room = size_t(block) - longest;
    if (r.context.size() > room) {
        r.context.erase(r.context.begin(), r.context.end() - static_cast<ptrdiff_t>(room));
        r.truncated = true;
    }
    return r;
}

// Part of one sequence's new tokens, as fed to one forward call.
struct Segment {
    int slot, start;
    const int* tokens;
    const int* targets;  // null when no loss is wanted
    int count;
    size_t owner;  // which sum the losses go to
};

// Runs segments through the cache in calls of at most max_tokens positions, splitting a
// segment across calls when needed (its later part then attends to the earlier one through
// the cache). Losses of segments with targets are added to sums[owner] in token order.
void run_segments(GptInference& inference, const GptConfig& config,
                  const std::vector<Segment>& segments, std::vector<double>& sums) {
    const int max_tokens = inference.max_tokens();
    std::vector<int> tokens, targets, slot, start, count;
    std::vector<size_t> owner;
    std::vector<float> losses(static_cast<size_t>(max_tokens));
    bool want_losses = false;
    auto flush = [&]() {
        if (slot.empty()) return;
        const float* logits = inference.forward(
            tokens.data(), slot.data(), start.data(), count.data(), static_cast<int>(slot.size()),
            want_losses ? GptInference::Logits::All : GptInference::Logits::None);
        if (want_losses) {
            const int N = static_cast<int>(tokens.size());
            nn::cross_entropy_forward_backward(losses.data(), nullptr, logits, targets.data(), N,
                                               config.vocab_size, config.padded_vocab_size, 0.0f);
            size_t row = 0;
            for (size_t i = 0; i < slot.size(); ++i) {
                for (int t = 0; t < count[i]; ++t, ++row) {
                    if (targets[row] >= 0) sums[owner[i]] += losses[row];
                }
            }
        }
        tokens.clear();
        targets.clear();
        slot.clear();
        start.clear();
        count.clear();
        owner.clear();
        want_losses = false;
    };
    for (const Segment& s : segments) {
        int done = 0;
        while (done < s.count) {
            if (static_cast<int>(tokens.size()) == max_tokens ||
                static_cast<int>(slot.size()) == inference.max_batch()) {
                flush();
            }
            // A slot appears at most once per call: a split segment continues in the next.
            if (std::find(slot.begin(), slot.end(), s.slot) != slot.end()) flush();
            const int take = std::min(s.count - done, max_tokens - static_cast<int>(tokens.size()));
            tokens.insert(tokens.end(), s.tokens + done, s.tokens + done + take);
            for (int t = 0; t < take; ++t) targets.push_back(s.targets ? s.targets[done + t] : -1);
            want_losses = want_losses || s.targets != nullptr;
            slot.push_back(s.slot);
            start.push_back(s.start + done);
            count.push_back(take);
            owner.push_back(s.owner);
            done += take;
        }
    }
    flush();
}

// Scores requests[first, first + n) with request i in cache slots 4i .. 4i + 3.
void score_requests(GptInference& inference, const GptConfig& config,
                    const std::vector<Request>& requests, size_t first, size_t n,
                    std::vector<Sums>& out) {
    std::vector<double> sums(n * 4, 0.0);
    // 1. Every context but its last token, once per item.
    std::vector<Segment> segments;
    for (size_t i = 0; i < n; ++i) {
        const Request& r = requests[first + i];
        const int len = static_cast<int>(r.context.size()) - 1;
        if (len > 0) segments.push_back({int(4 * i), 0, r.context.data(), nullptr, len, 4 * i});
    }
    run_segments(inference, config, segments, sums);
    for (size_t i = 0; i < n; ++i) {
        const int len = static_cast<int>(requests[first + i].context.size()) - 1;
        for (int j = 1; j < 4; ++j) inference.copy_prefix(int(4 * i), int(4 * i) + j, len);
    }
    // 2. Each ending, fed as [last context token, ending tokens but the last], so that
    // position t predicts ending token t.
    std::vector<std::vector<int>> inputs(n * 4);
    segments.clear();
    for (size_t i = 0; i < n; ++i) {
        const Request& r = requests[first + i];
        const int start = static_cast<int>(r.context.size()) - 1;
        for (size_t j = 0; j < 4; ++j) {
            const std::vector<int>& ending = r.endings[j];
            std::vector<int>& in = inputs[4 * i + j];
            in.push_back(r.context.back());
            in.insert(in.end(), ending.begin(), ending.end() - 1);
            segments.push_back({int(4 * i + j), start, in.data(), ending.data(),
                                static_cast<int>(ending.size()), 4 * i + j});
        }
    }
    run_segments(inference, config, segments, sums);
    for (size_t i = 0; i < n; ++i) {
        Sums& s = out[first + i];
        for (size_t j = 0; j < 4; ++j) {
            s.loss[j] = sums[4 * i + j];
            s.tokens[j] = static_cast<int>(requests[first + i].endings[j].size());
        }
    }
}

template <typename Better>
int best_of(const std::array<double, 4>& v, Better better) {
    int best = 0;
    for (int i = 1; i < 4; ++i) {
        if (better(v[size_t(i)], v[size_t(best)])) best = i;
    }
    return best;
}

}  // namespace

void finish_hellaswag_score(const HellaSwagItem& item, HellaSwagScore& s, HellaSwagResult& result) {
    std::array<double, 4> loglik_norm{};
    for (size_t j = 0; j < 4; ++j) {
        s.mean_loss[j] = s.sum_loss[j] / s.ending_tokens[j];
        s.ending_chars[j] = std::max(1, static_cast<int>(python_len(item.endings[j])));
        loglik_norm[j] = s.loglik[j] / s.ending_chars[j];
    }
    auto lower = [](double a, double b) { return a < b; };
    auto higher = [](double a, double b) { return a > b; };
    s.pred = best_of(s.sum_loss, lower);
    s.pred_norm = best_of(s.mean_loss, lower);
    s.harness_pred = best_of(s.loglik, higher);
    s.harness_pred_norm = best_of(loglik_norm, higher);
    result.items += 1;
    result.correct += s.pred == item.label;
    result.correct_norm += s.pred_norm == item.label;
    result.harness_correct += s.harness_pred == item.label;
    result.harness_correct_norm += s.harness_pred_norm == item.label;
    result.truncated += s.truncated;
}

HellaSwagResult evaluate_hellaswag(const GptModel& model, const Gpt2Tokenizer& tokenizer,
                                   const std::vector<HellaSwagItem>& items,
                                   const HellaSwagOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    const GptConfig& config = model.config();
    const int block = config.block_size;
    check(options.items_per_batch >= 1 && options.max_batch_tokens >= 1,
          "hellaswag: items_per_batch and max_batch_tokens must be ≥ 1");

    // Both styles' token sequences; where the texts agree (the text format) one run serves
    // both.
    const size_t n_items = items.size();
    std::vector<Request> completion(n_items), harness(n_items);
    std::vector<uint8_t> same(n_items);
    size_t longest = 1;
    for (size_t i = 0; i < n_items; ++i) {
        const HellaSwagItem& item = items[i];
        completion[i] = make_request(tokenizer, item.raw_context, item.raw_endings, block);
        same[i] = item.raw_context == item.context && item.raw_endings == item.endings;
        if (!same[i]) harness[i] = make_request(tokenizer, item.context, item.endings, block);
        for (const Request* r : {&completion[i], &harness[i]}) {
            for (const auto& e : r->endings)
                longest = std::max(longest, r->context.size() + e.size());
        }
    }

    // Buffers sized from the work: never more items at once than there are.
    const size_t per_batch =
        std::min(static_cast<size_t>(options.items_per_batch), std::max<size_t>(n_items, 1));
    const int max_len = static_cast<int>(std::min<size_t>(longest, size_t(block)));
    check_fits_in_memory(GptInference::memory_bytes(config, static_cast<int>(4 * per_batch),
                                                    max_len, options.max_batch_tokens),
                         fmt::format("HellaSwag scoring of {} items at once", per_batch),
                         "score fewer together: lower --batch-items");
    GptInference inference(model, static_cast<int>(4 * per_batch), max_len,
                           options.max_batch_tokens);
    std::vector<Sums> completion_sums(n_items), harness_sums(n_items);
    ProgressBar* bar = nullptr;
    std::unique_ptr<ProgressBar> bar_owner;
    if (options.progress) {
        bar_owner = std::make_unique<ProgressBar>("hellaswag", n_items, "items");
        bar = bar_owner.get();
    }
    HellaSwagResult result;
    result.scores.resize(n_items);
    for (size_t first = 0; first < n_items; first += per_batch) {
        const size_t n = std::min(per_batch, n_items - first);
        score_requests(inference, config, completion, first, n, completion_sums);
        // The harness texts of the items whose two styles differ, packed together.
        std::vector<size_t> differ;
        for (size_t i = first; i < first + n; ++i) {
            if (!same[i]) differ.push_back(i);
        }
        if (!differ.empty()) {
            std::vector<Request> packed;
            for (size_t i : differ) packed.push_back(harness[i]);
            std::vector<Sums> packed_sums(packed.size());
            score_requests(inference, config, packed, 0, packed.size(), packed_sums);
            for (size_t k = 0; k < differ.size(); ++k) harness_sums[differ[k]] = packed_sums[k];
        }
        for (size_t i = first; i < first + n; ++i) {
            if (same[i]) harness_sums[i] = completion_sums[i];
            const HellaSwagItem& item = items[i];
            HellaSwagScore& s = result.scores[i];
            for (size_t j = 0; j < 4; ++j) {
                s.sum_loss[j] = completion_sums[i].loss[j];
                s.ending_tokens[j] = completion_sums[i].tokens[j];
                s.loglik[j] = -harness_sums[i].loss[j];
            }
            s.truncated = completion[i].truncated || harness[i].truncated;
            finish_hellaswag_score(item, s, result);
        }
        if (bar) {
            bar->update(first + n, fmt::format("acc_norm {:.4f}", result.acc_norm()));
        }
        if (options.on_batch) options.on_batch(static_cast<int64_t>(first + n), n_items);
    }
    if (bar) bar->finish(fmt::format("acc_norm {:.4f}", result.acc_norm()));
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
}

}  // namespace greenmoe

// Benchmark-task scoring as lm-evaluation-harness 0.4 does it (see task_scoring.h).
#include "greenmoe/eval/task_scoring.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/text/python_str.h"

namespace greenmoe {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// numpy.argmax: the first of equal maxima.
int argmax(const std::vector<double>& v) {
    return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

// An item's candidates as requests: those with the same (cut) context share one request.
struct PreparedItem {
    ScoredItem scored;
    std::vector<ScoreRequest> requests;
    // [request][continuation]: the candidates it scores (more than one where two candidates
    // are the same tokens, as when the window cuts away where they differ).
    std::vector<std::vector<std::vector<size_t>>> candidates;
    int64_t tokens = 0;  // Σ context and continuation tokens
};

PreparedItem prepare_item(const LanguageModel& model, const TaskItem& item) {
    PreparedItem p;
    const size_t n = item.candidates.size();
    check(n > 0, "task item without candidates");
    std::vector<EncodedPair> pairs;
    LastContextEncoding last;
    for (const tasks::Candidate& c : item.candidates) {
        pairs.push_back(encode_pair(model, c.context, c.continuation, &last));
        p.scored.truncated = p.scored.truncated || pairs.back().truncated;
    }
    p.scored.loglik.assign(n, 0.0);
    p.scored.greedy.assign(n, false);
    p.scored.tokens.assign(n, 0);
    std::vector<bool> done(n, false);
    for (size_t i = 0; i < n; ++i) {
        if (done[i]) continue;
        ScoreRequest request{pairs[i].context, {}};
        std::vector<std::vector<size_t>> same;
        for (size_t j = i; j < n; ++j) {
            if (done[j] || pairs[j].context != pairs[i].context) continue;
            done[j] = true;
            // Identical requests score once, so that they tie exactly as in exact arithmetic
            // (the first wins the argmax), whatever rows the matrix products put them in.
            const auto& conts = request.continuations;
            const auto k = size_t(std::find(conts.begin(), conts.end(), pairs[j].continuation) -
                                  conts.begin());
            if (k == conts.size()) {
                request.continuations.push_back(pairs[j].continuation);
                p.tokens += static_cast<int64_t>(pairs[j].continuation.size());
                same.emplace_back();
            }
            same[k].push_back(j);
        }
        p.tokens += static_cast<int64_t>(request.context.size());
        p.requests.push_back(std::move(request));
        p.candidates.push_back(std::move(same));
    }
    return p;
}

// Scores the items' requests in one score_batch call.
void score_items(const LanguageModel& model, std::vector<PreparedItem>& items) {
    std::vector<ScoreRequest> requests;
    for (PreparedItem& p : items) {
        for (ScoreRequest& r : p.requests) requests.push_back(std::move(r));
    }
    const auto scores = model.score_batch(requests);
    size_t next = 0;
    for (PreparedItem& p : items) {
        for (const auto& request : p.candidates) {
            const auto& got = scores[next++];
            for (size_t k = 0; k < request.size(); ++k) {
                for (const size_t candidate : request[k]) {
                    p.scored.loglik[candidate] = got[k].log_likelihood;
                    p.scored.greedy[candidate] = got[k].greedy;
                    p.scored.tokens[candidate] = got[k].tokens;
                }
            }
        }
    }
}

void add_metrics(ScoredItem& s, const TaskItem& item, TaskOutput output) {
    if (output == TaskOutput::Loglikelihood) {
        s.acc = s.greedy[0] ? 1.0 : 0.0;
        return;
    }
    check(item.choices.size() == s.loglik.size(), "task item: {} choices for {} candidates",
          item.choices.size(), s.loglik.size());
    std::vector<double> per_char(s.loglik.size());
    for (size_t i = 0; i < per_char.size(); ++i) {
        per_char[i] = s.loglik[i] / static_cast<double>(python_len(item.choices[i]));
    }
    s.pred = argmax(s.loglik);
    s.pred_norm = argmax(per_char);
    s.acc = s.pred == item.gold ? 1.0 : 0.0;
    s.acc_norm = s.pred_norm == item.gold ? 1.0 : 0.0;
}

std::map<std::string, MetricValue> metrics_of(const std::vector<const ScoredItem*>& items,
                                              TaskOutput output) {
    std::vector<double> acc, acc_norm, ll;
    for (const ScoredItem* s : items) {
        acc.push_back(s->acc);
        acc_norm.push_back(s->acc_norm);
        ll.push_back(s->loglik[0]);
    }
    std::map<std::string, MetricValue> m;
    m["acc"] = mean_with_stderr(acc);
    if (output == TaskOutput::MultipleChoice) {
        m["acc_norm"] = mean_with_stderr(acc_norm);
    } else {
        // The harness's perplexity: exp(−mean log-likelihood); its standard error comes from
        // a bootstrap, which greenmoe does not run.
        m["perplexity"] = {std::exp(-mean_with_stderr(ll).value), kNaN};
    }
    return m;
}

}  // namespace

EncodedPair encode_pair(const LanguageModel& model, const std::string& context,
                        const std::string& continuation, LastContextEncoding* last) {
    EncodedPair p;
    const std::vector<int32_t> prefix = model.context_prefix();
    if (context.empty()) {
        p.context = {model.empty_context_token()};
        p.continuation = model.encode(continuation);
        // The harness: a continuation that starts with that token itself gives it up as the
        // context rather than having it twice.
        if (!p.continuation.empty() && p.continuation.front() == p.context.front()) {
            p.continuation.erase(p.continuation.begin());
        }
    } else {
        const size_t kept = context.find_last_not_of(' ') + 1;  // npos + 1 = 0: all spaces
        const std::string ctx = context.substr(0, kept);
        std::string cont = context.substr(kept);
        cont += continuation;
        LastContextEncoding local;
        LastContextEncoding& encoded = last ? *last : local;
        if (encoded.ids.empty() || encoded.text != ctx) encoded = {ctx, model.encode(ctx)};
        const std::vector<int32_t>& ctx_ids = encoded.ids;
        const std::vector<int32_t> whole = model.encode(ctx + cont);
        p.context = prefix;
        p.context.insert(p.context.end(), ctx_ids.begin(), ctx_ids.end());
        const size_t skip = std::min(ctx_ids.size(), whole.size());
        p.continuation.assign(whole.begin() + static_cast<ptrdiff_t>(skip), whole.end());
    }
    check(!p.continuation.empty(), "the continuation \"{}\" encodes to no tokens", continuation);
    const size_t window = static_cast<size_t>(model.max_length()) + 1;
    check(p.continuation.size() < window,
          "a continuation of {} tokens does not fit the model's window of {}",
          p.continuation.size(), model.max_length());
    if (p.context.size() + p.continuation.size() > window) {
        const size_t cut = p.context.size() + p.continuation.size() - window;
        p.context.erase(p.context.begin(), p.context.begin() + static_cast<ptrdiff_t>(cut));
        p.truncated = true;
    }
    return p;
}

MetricValue mean_with_stderr(const std::vector<double>& values) {
    const double n = static_cast<double>(values.size());
    if (values.empty()) return {kNaN, kNaN};
    double sum = 0.0;
    for (const double v : values) sum += v;
    const double mean = sum / n;
    if (values.size() < 2) return {mean, kNaN};
    double sq = 0.0;
    for (const double v : values) sq += (v - mean) * (v - mean);
    return {mean, std::sqrt(sq / (n - 1.0)) / std::sqrt(n)};
}

double pooled_stderr(const std::vector<double>& stderrs, const std::vector<int64_t>& sizes) {
    double num = 0.0, total = 0.0;
    for (size_t i = 0; i < sizes.size(); ++i) {
        const double n = static_cast<double>(sizes[i]);
        num += (n - 1.0) * stderrs[i] * stderrs[i] * n;
        total += n;
    }
    const double denominator = total - static_cast<double>(sizes.size());
    if (denominator <= 0) return kNaN;
    return std::sqrt(num / denominator / total);
}

TaskScores score_task(const LanguageModel& model, const std::string& name,
                      const std::vector<TaskItem>& items, TaskOutput output,
                      const TaskScoringOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    TaskScores r;
    r.name = name;
    r.output = output;
    std::unique_ptr<ProgressBar> bar;
    if (options.progress) bar = std::make_unique<ProgressBar>(name, items.size(), "docs");
    double correct = 0.0;
    // Documents go to the model together until they hold batch_tokens tokens: short 0-shot
    // items make small matrix products alone.
    for (size_t begin = 0; begin < items.size();) {
        std::vector<PreparedItem> batch;
        int64_t tokens = 0;
        size_t end = begin;
        while (end < items.size() && (batch.empty() || tokens < options.batch_tokens)) {
            batch.push_back(prepare_item(model, items[end++]));
            tokens += batch.back().tokens;
        }
        score_items(model, batch);
        for (size_t i = begin; i < end; ++i) {
            ScoredItem& s = batch[i - begin].scored;
            add_metrics(s, items[i], output);
            correct += s.acc;
            r.truncated += s.truncated;
            r.items.push_back(std::move(s));
        }
        begin = end;
        if (bar) bar->update(end, fmt::format("acc {:.4f}", correct / double(end)));
    }
    if (bar) bar->finish(fmt::format("acc {:.4f}", correct / std::max<double>(1, items.size())));
    std::vector<const ScoredItem*> all;
    std::map<std::string, std::vector<const ScoredItem*>> by_group;
    for (size_t i = 0; i < items.size(); ++i) {
        all.push_back(&r.items[i]);
        if (!items[i].group.empty()) by_group[items[i].group].push_back(&r.items[i]);
    }
    r.metrics = metrics_of(all, output);
    for (const auto& [group, members] : by_group) {
        r.groups[group] = metrics_of(members, output);
        r.group_sizes[group] = static_cast<int64_t>(members.size());
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

namespace {

nlohmann::json number(double v) {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json("N/A");
}

nlohmann::json metric_entry(const std::string& alias,
                            const std::map<std::string, MetricValue>& metrics) {
    nlohmann::json e = {{"alias", alias}};
    for (const auto& [metric, m] : metrics) {
        e[metric + ",none"] = number(m.value);
        e[metric + "_stderr,none"] = number(m.stderr_);
    }
    return e;
}

}  // namespace

nlohmann::json harness_results(const std::vector<TaskScores>& tasks, int num_fewshot) {
    nlohmann::json results = nlohmann::json::object(), groups = nlohmann::json::object(),
                   group_subtasks = nlohmann::json::object(), n_shot = nlohmann::json::object(),
                   n_samples = nlohmann::json::object();
    for (const TaskScores& t : tasks) {
        n_shot[t.name] = num_fewshot;
        if (t.groups.empty()) {
            results[t.name] = metric_entry(t.name, t.metrics);
            n_samples[t.name] = {{"effective", t.items.size()}};
            continue;
        }
        // A group (MMLU): each subject as its own task, the group's micro average (every
        // document counts once, as the harness weights by size) and the macro average.
        nlohmann::json subtasks = nlohmann::json::array();
        std::map<std::string, std::vector<double>> values, stderrs;
        std::vector<int64_t> sizes;
        for (const auto& [group, metrics] : t.groups) {
            const std::string sub = t.name + "_" + group;
            subtasks.push_back(sub);
            results[sub] = metric_entry(" - " + group, metrics);
            n_shot[sub] = num_fewshot;
            n_samples[sub] = {{"effective", t.group_sizes.at(group)}};
            sizes.push_back(t.group_sizes.at(group));
            for (const auto& [metric, m] : metrics) {
                values[metric].push_back(m.value);
                stderrs[metric].push_back(m.stderr_);
            }
        }
        nlohmann::json entry = {{"alias", t.name}};
        for (const auto& [metric, m] : t.metrics) {
            entry[metric + ",none"] = number(m.value);
            entry[metric + "_stderr,none"] = number(pooled_stderr(stderrs[metric], sizes));
            double macro = 0.0;
            for (const double v : values[metric]) macro += v;
            entry[metric + "_macro,none"] = number(macro / double(values[metric].size()));
        }
        results[t.name] = entry;
        groups[t.name] = entry;
        group_subtasks[t.name] = subtasks;
    }
    return {{"results", results},
            {"groups", groups},
            {"group_subtasks", group_subtasks},
            {"n-shot", n_shot},
            {"n-samples", n_samples}};
}

}  // namespace greenmoe

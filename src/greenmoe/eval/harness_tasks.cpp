// Benchmark tasks end to end (see harness_tasks.h).
#include "greenmoe/eval/harness_tasks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/eval/task_scoring.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe {

namespace {

std::string value_text(const MetricValue& m) {
    std::string s = std::isfinite(m.value) ? fmt::format("{:.4f}", m.value) : "N/A";
    s += "  ± ";
    s += std::isfinite(m.stderr_) ? fmt::format("{:.4f}", m.stderr_) : "N/A";
    return s;
}

void print_rows(const std::string& name, int shots, const std::map<std::string, MetricValue>& m,
                int64_t docs) {
    for (const auto& [metric, value] : m) {
        std::printf("%-32s %6d  %-10s %s  (%lld docs)\n", name.c_str(), shots, metric.c_str(),
                    value_text(value).c_str(), static_cast<long long>(docs));
    }
}

nlohmann::json task_config(const tasks::TaskInfo& info, const tasks::TaskOptions& o) {
    return {{"task", info.name},
            {"output_type",
             info.kind == tasks::OutputKind::MultipleChoice ? "multiple_choice" : "loglikelihood"},
            {"test_split", info.eval_split},
            {"fewshot_split", info.fewshot_split},
            {"num_fewshot", o.num_fewshot},
            {"target_delimiter", " "},
            {"fewshot_delimiter", "\n\n"},
            {"metric_list", info.metrics},
            {"fewshot_seed", o.seed},
            {"metadata", {{"version", info.version}}}};
}

// The harness's --log_samples record of one document.
nlohmann::json sample_record(size_t index, const tasks::Instance& doc, const ScoredItem& s,
                             tasks::OutputKind kind) {
    nlohmann::json arguments = nlohmann::json::array(), resps = nlohmann::json::array();
    for (size_t c = 0; c < doc.candidates.size(); ++c) {
        arguments.push_back({doc.candidates[c].context, doc.candidates[c].continuation});
        resps.push_back({s.loglik[c], bool(s.greedy[c])});
    }
    nlohmann::json r = {{"doc_id", index},    {"source", doc.doc_id},    {"doc", doc.doc},
                        {"target", doc.gold}, {"arguments", arguments},  {"filtered_resps", resps},
                        {"acc", s.acc},       {"truncated", s.truncated}};
    if (kind == tasks::OutputKind::MultipleChoice) {
        r["acc_norm"] = s.acc_norm;
        r["pred"] = s.pred;
        r["pred_norm"] = s.pred_norm;
    } else {
        r["perplexity"] = s.loglik[0];  // the harness logs the log-likelihood under this name
    }
    return r;
}

}  // namespace

std::vector<std::string> parse_task_list(const std::string& list) {
    std::vector<std::string> names;
    size_t at = 0;
    while (at <= list.size()) {
        const size_t comma = std::min(list.find(',', at), list.size());
        std::string name = list.substr(at, comma - at);
        const size_t first = name.find_first_not_of(' ');
        name = first == std::string::npos
                   ? ""
                   : name.substr(first, name.find_last_not_of(' ') + 1 - first);
        if (!name.empty()) {
            tasks::task_info(name);  // an unknown name is a UsageError listing the known ones
            names.push_back(name);
        }
        at = comma + 1;
    }
    usage_check(!names.empty(), "--task: no task named in '{}'", list);
    return names;
}

nlohmann::json run_harness_tasks(const LanguageModel& model, const std::vector<std::string>& names,
                                 const HarnessRunOptions& options) {
    std::vector<TaskScores> scores;
    nlohmann::json configs = nlohmann::json::object(), versions = nlohmann::json::object();
    std::string samples;
    const int shots = options.tasks.num_fewshot;
    std::printf("%-32s %6s  %-10s %s\n", "task", "n-shot", "metric", "value  ± stderr");
    for (const std::string& name : names) {
        const tasks::TaskInfo& info = tasks::task_info(name);
        const std::vector<tasks::Instance> docs = tasks::build_task(name, options.tasks);
        check(!docs.empty(), "{}: no documents to evaluate", name);
        TaskScoringOptions scoring;
        scoring.progress = options.progress;
        scoring.batch_tokens = options.batch_tokens;
        TaskScores t = score_task(model, name, docs, info.kind, scoring);
        // Only the metrics the task's YAML lists (BoolQ, WinoGrande, RTE, MMLU: acc only).
        const auto listed = [&](const std::string& metric) {
            return std::find(info.metrics.begin(), info.metrics.end(), metric) !=
                   info.metrics.end();
        };
        std::erase_if(t.metrics, [&](const auto& m) { return !listed(m.first); });
        for (auto& [group, m] : t.groups) {
            std::erase_if(m, [&](const auto& e) { return !listed(e.first); });
        }
        configs[name] = task_config(info, options.tasks);
        versions[name] = info.version;
        print_rows(name, shots, t.metrics, static_cast<int64_t>(t.items.size()));
        for (const auto& [group, m] : t.groups) {
            print_rows(" - " + group, shots, m, t.group_sizes.at(group));
        }
        if (t.truncated > 0) {
            std::printf("%s: %lld documents had contexts cut to the model's window of %d\n",
                        name.c_str(), static_cast<long long>(t.truncated), model.max_length());
        }
        if (!options.log_samples.empty()) {
            for (size_t i = 0; i < docs.size(); ++i) {
                samples += sample_record(i, docs[i], t.items[i], info.kind).dump();
                samples += "\n";
            }
        }
        scores.push_back(std::move(t));
    }
    nlohmann::json out = harness_results(scores, shots);
    out["configs"] = configs;
    out["versions"] = versions;
    out["config"] = {{"model", "greenmoe"},
                     {"model_args", model.name()},
                     {"num_fewshot", shots},
                     {"fewshot_seed", options.tasks.seed},
                     {"limit", options.tasks.limit > 0 ? nlohmann::json(options.tasks.limit)
                                                       : nlohmann::json(nullptr)}};
    if (!options.log_samples.empty()) write_file_atomic(options.log_samples, samples);
    return out;
}

}  // namespace greenmoe

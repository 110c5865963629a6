// Scoring benchmark-task requests as lm-evaluation-harness 0.4 scores them, on any
// LanguageModel: the harness's encoding of (context, continuation) pairs, its truncation, its
// metrics (acc, acc_norm, LAMBADA's greedy accuracy and perplexity) with their standard
// errors, group averages (MMLU), and its results-file layout.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/eval/language_model.h"
#include "greenmoe/eval/tasks/tasks.h"

namespace greenmoe {

// A task's documents as the task layer builds them (tasks/tasks.h). MultipleChoice: the
// choice of highest log-likelihood (acc) and of highest log-likelihood per character of the
// choice (acc_norm). Loglikelihood (LAMBADA): one candidate; acc = its tokens are all greedy,
// perplexity = exp(−mean log-likelihood) over documents.
using TaskItem = tasks::Instance;
using TaskOutput = tasks::OutputKind;

struct ScoredItem {
    std::vector<double> loglik;
    std::vector<bool> greedy;
    std::vector<int64_t> tokens;
    bool truncated = false;  // some context lost its first tokens to fit the window
    int pred = -1, pred_norm = -1;
    double acc = 0.0, acc_norm = 0.0;  // 0 or 1
};

struct MetricValue {
    double value = 0.0;
    double stderr_ = 0.0;  // NaN where the harness has none (one document; perplexity)
};

struct TaskScores {
    std::string name;
    TaskOutput output = TaskOutput::MultipleChoice;
    std::vector<ScoredItem> items;
    std::map<std::string, MetricValue> metrics;  // "acc", "acc_norm" or "acc", "perplexity"
    // Per group (MMLU subject): the same metrics over its documents, and the documents.
    std::map<std::string, std::map<std::string, MetricValue>> groups;
    std::map<std::string, int64_t> group_sizes;
    int64_t truncated = 0;
    double seconds = 0.0;
};

struct TaskScoringOptions {
    bool progress = true;
    // Documents are scored together until their requests hold this many tokens (contexts and
    // continuations); 0 or less: one document at a time. The scores do not depend on it
    // beyond float rounding.
    int64_t batch_tokens = 1024;
};

// (context, continuation) as the harness's _encode_pair makes it: trailing spaces of the
// context move to the continuation; the continuation is what encoding context + continuation
// adds past the context's own encoding; the model's context prefix (BOS) in front; an empty
// context is the model's empty-context token. Then both are cut to the harness's window:
// (context + continuation)[−(max_length + 1):].
struct EncodedPair {
    std::vector<int32_t> context, continuation;
    bool truncated = false;
};
// The last context encoded, so that the choices of one document, which share it, encode it
// once.
struct LastContextEncoding {
    std::string text;
    std::vector<int32_t> ids;
};
EncodedPair encode_pair(const LanguageModel& model, const std::string& context,
                        const std::string& continuation, LastContextEncoding* last = nullptr);

TaskScores score_task(const LanguageModel& model, const std::string& name,
                      const std::vector<TaskItem>& items, TaskOutput output,
                      const TaskScoringOptions& options = {});

// The harness's statistics: mean and its standard error sqrt(Σ(x − mean)² / (n − 1) / n).
MetricValue mean_with_stderr(const std::vector<double>& values);
// A group's standard error from its parts' (lm-evaluation-harness pooled_sample_stderr).
double pooled_stderr(const std::vector<double>& stderrs, const std::vector<int64_t>& sizes);

// lm-evaluation-harness's results layout: {"results": {task: {"acc,none": …,
// "acc_stderr,none": …}}, "groups", "group_subtasks", "n-shot", "n-samples", "versions"};
// MMLU's subjects as "mmlu_<subject>" with the group's micro average (weighted by size, as
// the harness aggregates) and, beside it, the macro average ("acc_macro,none").
nlohmann::json harness_results(const std::vector<TaskScores>& tasks, int num_fewshot);

}  // namespace greenmoe

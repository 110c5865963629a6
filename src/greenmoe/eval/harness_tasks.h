// `greenmoe eval --task arc_easy,boolq,…`: each task's requests built as lm-evaluation-harness
// builds them, scored on one model, reported as the harness reports them.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/eval/language_model.h"
#include "greenmoe/eval/tasks/tasks.h"

namespace greenmoe {

struct HarnessRunOptions {
    tasks::TaskOptions tasks;
    bool progress = true;
    int64_t batch_tokens = 1024;  // documents scored together (TaskScoringOptions)
    // One JSON object per document (its fields, the requests, log-likelihoods, prediction,
    // metrics), as the harness's --log_samples writes them; empty: none.
    std::filesystem::path log_samples;
};

// Splits "arc_easy,boolq" and checks every name (UsageError naming the known tasks).
std::vector<std::string> parse_task_list(const std::string& list);

// Runs the tasks in order; returns the harness's results JSON with "configs" and "config"
// filled in, and prints one table row per task (and MMLU subject group) on stdout.
nlohmann::json run_harness_tasks(const LanguageModel& model, const std::vector<std::string>& names,
                                 const HarnessRunOptions& options);

}  // namespace greenmoe

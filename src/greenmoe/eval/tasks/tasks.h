// Benchmark tasks as lm-evaluation-harness 0.4 builds them: each task's documents read from
// its original release, and the exact loglikelihood requests (context, continuation) the
// harness would score, 0-shot or with few-shot examples it would pick for the same seed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace greenmoe::tasks {

// One loglikelihood request. The continuation already holds target_delimiter where the
// harness puts it (" " + choice for multiple choice).
struct Candidate {
    std::string context;
    std::string continuation;
};

struct Instance {
    std::string doc_id;                 // "file:line" of the document, for messages and logs
    std::vector<Candidate> candidates;  // one per choice, in choice order
    // The choice texts as the harness's doc_to_choice returns them (acc_norm divides by their
    // length in characters). WinoGrande: the two partial sentences, as in the harness.
    std::vector<std::string> choices;
    int gold = 0;        // index of the correct choice
    std::string group;   // MMLU: the subject ("abstract_algebra"); else empty
    nlohmann::json doc;  // the document's fields as the harness's dataset has them
};

// lambada_openai: one candidate (context, " " + last word), scored by greedy match and
// perplexity. Everything else: one candidate per choice, scored by acc (and acc_norm).
enum class OutputKind { MultipleChoice, Loglikelihood };

struct TaskInfo {
    std::string name;
    OutputKind kind = OutputKind::MultipleChoice;
    std::vector<std::string> metrics;
    std::string eval_split, fewshot_split;  // the harness's split names ("test", "train", ...)
    int version = 1;                        // the task YAML's metadata.version
    std::string url;                        // where users get the original files
};

// The supported tasks: arc_easy, arc_challenge, boolq, winogrande, hellaswag, piqa,
// openbookqa, rte, mmlu, lambada_openai. Also accepted by task_info and build_task: each
// MMLU subject alone as mmlu_<subject> (the harness's names).
std::vector<std::string> task_names();
// The 57 MMLU subjects, in the harness's (alphabetical) order.
const std::vector<std::string>& mmlu_subjects();
// Throws greenmoe::UsageError naming the known tasks.
const TaskInfo& task_info(const std::string& name);

struct TaskOptions {
    int num_fewshot = 0;
    uint64_t seed = 1234;  // the harness's fewshot_random_seed
    int64_t limit = 0;     // evaluate the first `limit` documents (per MMLU subject); 0 = all
    // Folders searched, in this order: data_dir, $GREENMOE_DATA, cache_dir, cache_dir/data.
    std::filesystem::path data_dir;
    std::filesystem::path cache_dir;
};

// Reads the task's files and builds its instances in the harness's document order. Throws
// greenmoe::Error naming the file (and line, row and field) that is missing or malformed, and
// UsageError for an unknown task or a --num-fewshot the few-shot split cannot supply.
std::vector<Instance> build_task(const std::string& name, const TaskOptions& options);

}  // namespace greenmoe::tasks

// Benchmark tasks as lm-evaluation-harness 0.4 builds them: each task's documents read from
// its original release or the Hugging Face hub's Parquet copy, and the exact loglikelihood requests
// (context, continuation) the harness would score, 0-shot or with few-shot examples it would pick
// for the same seed.
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

// The files each task reads, by their names in the original release, looked for in each data
// folder, in the subfolders listed, then in the folder itself (evaluated split / few-shot split):
//   arc_easy, arc_challenge  ARC-V1-Feb2018.zip: ARC-Easy-Test.jsonl / ARC-Easy-Train.jsonl
//                            (ARC-Challenge-*), in ARC-V1-Feb2018[-2]/ARC-Easy/, ARC-Easy/,
//                            arc_easy/ (question.stem, question.choices[{text, label}], answerKey)
//   boolq                    dev.jsonl (or SuperGLUE's val.jsonl) / train.jsonl, in boolq/, BoolQ/;
//                            the prompt's passage is SuperGLUE's "title -- passage"
//   winogrande               winogrande_1.1.zip: dev.jsonl / train_xl.jsonl, in winogrande_1.1/,
//                            winogrande/
//   hellaswag                hellaswag_val.jsonl (or llama.cpp's hellaswag_val_full.txt[.bz2]) /
//                            hellaswag_train.jsonl, in hellaswag/
//   piqa                     valid.jsonl + valid-labels.lst / train.jsonl + train-labels.lst, in
//                            piqa/, physicaliqa-train-dev/
//   openbookqa               OpenBookQA-V1-Sep2018.zip: Data/Main/test.jsonl / train.jsonl, in
//                            OpenBookQA-V1-Sep2018/Data/Main/, openbookqa/, Data/Main/, Main/
//   rte                      GLUE RTE.zip: dev.tsv / train.tsv, in RTE/, rte/, glue_data/RTE/
//   mmlu                     Hendrycks's data.tar: test/<subject>_test.csv / dev/<subject>_dev.csv,
//                            under mmlu/data/, data/, mmlu/ (headerless: question, A-D, answer)
//   lambada_openai           lambada_test.jsonl (OpenAI's, {"text": ...}), also few-shot, in
//                            lambada/, lambada_openai/
// Failing those, in the same data folder, the Hugging Face hub's Parquet copy the harness itself
// loads (HubSplit in task_files.h: <repo>/<config>/<split>-0000k-of-0000n.parquet, or the
// conversion branch's <repo>/<config>/<split>/0000.parquet), mapped field by field to the same
// documents: allenai/ai2_arc ARC-Easy / ARC-Challenge, aps/super_glue boolq, allenai/winogrande
// winogrande_xl, Rowan/hellaswag, baber/piqa, allenai/openbookqa main, nyu-mll/glue rte,
// cais/mmlu <subject>, EleutherAI/lambada_openai default. A folder given earlier wins over any
// copy in a later one.
// TaskInfo::url says where each comes from; a missing file's error lists every folder searched.
//
// Few-shot examples are drawn as the harness draws them: one random.Random(seed) per task (per
// MMLU subject), advanced document by document in order; random.sample(split, n), or n + 1
// with the evaluated document left out for the tasks whose YAML sets no test split (boolq,
// winogrande, hellaswag, piqa, rte); MMLU takes its dev split's first n.
//
// Reads the task's files and builds its instances in the harness's document order. Throws
// greenmoe::Error naming the file (and line, row and field) that is missing or malformed, and
// UsageError for an unknown task or a --num-fewshot the few-shot split cannot supply.
std::vector<Instance> build_task(const std::string& name, const TaskOptions& options);

}  // namespace greenmoe::tasks

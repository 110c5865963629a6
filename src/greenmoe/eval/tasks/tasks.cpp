// The ten benchmark tasks: each one's files, its doc_to_text / doc_to_choice / doc_to_target
// as its lm-evaluation-harness 0.4 YAML defines them, and the harness's few-shot prompt.
#include "greenmoe/eval/tasks/tasks.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "greenmoe/core/error.h"
#include "greenmoe/energy/csv_table.h"
#include "greenmoe/eval/hellaswag_data.h"
#include "greenmoe/eval/tasks/python_random.h"
#include "greenmoe/eval/tasks/task_files.h"
#include "greenmoe/text/python_str.h"

namespace greenmoe::tasks {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTargetDelimiter = " ";
constexpr const char* kFewshotDelimiter = "\n\n";

// A document after the harness's process_docs, with what its template functions return.
struct Doc {
    std::string id;                    // "file:line"
    nlohmann::json fields;             // the row as the harness's dataset holds it
    std::string text;                  // doc_to_text (unused by multiple-input tasks)
    std::vector<std::string> choices;  // doc_to_choice (multiple choice only)
    int gold = 0;                      // doc_to_target as an index into choices
    // doc_to_target when it is text: lambada's " word", WinoGrande's rest of the sentence.
    std::string target;
};

struct Split {
    std::string file;  // for messages
    std::vector<Doc> docs;
};

// How a task turns documents into prompts.
struct TaskDef {
    TaskInfo info;
    // WinoGrande: doc_to_text is the gold index and each choice is its own context; the
    // continuation (the rest of the sentence) is shared.
    bool multiple_input = false;
    // MMLU: fewshot_config.sampler first_n takes the split's first n documents in order.
    bool first_n = false;
    // The harness passes the evaluated document to the sampler (which draws n + 1 and drops
    // it) exactly when fewshot_config.split == test_split. Tasks with neither set (None == None)
    // do that although their examples come from another split; ARC and OpenBookQA, whose
    // test_split is "test" and fewshot split unset, do not.
    bool exclude_eval_doc = false;
    std::vector<std::string> subfolders;  // under each data root
    // The Hugging Face data set the harness loads (dataset_path first, then older names of
    // it) and its dataset_name; MMLU's configuration is the subject.
    std::vector<std::string> hub_repos;
    std::string hub_config = "default";
};

const std::vector<std::string> kMmluSubjects = {
    "abstract_algebra",
    "anatomy",
    "astronomy",
    "business_ethics",
    "clinical_knowledge",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_medicine",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "econometrics",
    "electrical_engineering",
    "elementary_mathematics",
    "formal_logic",
    "global_facts",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_european_history",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_mathematics",
    "high_school_microeconomics",
    "high_school_physics",
    "high_school_psychology",
    "high_school_statistics",
    "high_school_us_history",
    "high_school_world_history",
    "human_aging",
    "human_sexuality",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "machine_learning",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "moral_disputes",
    "moral_scenarios",
    "nutrition",
    "philosophy",
    "prehistory",
    "professional_accounting",
    "professional_law",
    "professional_medicine",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
    "virology",
    "world_religions",
};

TaskDef make_def(std::string name, OutputKind kind, std::vector<std::string> metrics,
                 std::string eval_split, std::string fewshot_split, int version, std::string url,
                 std::vector<std::string> subfolders) {
    TaskDef d;
    d.info = {std::move(name),          kind,    std::move(metrics), std::move(eval_split),
              std::move(fewshot_split), version, std::move(url)};
    // A data folder may also be the task's own folder: its files straight inside, looked for
    // last so that generic names (dev.jsonl) are first taken from the task's subfolder.
    if (std::find(subfolders.begin(), subfolders.end(), "") == subfolders.end()) {
        subfolders.push_back("");
    }
    d.subfolders = std::move(subfolders);
    return d;
}

const std::map<std::string, TaskDef>& task_defs() {
    static const std::map<std::string, TaskDef> defs = [] {
        const auto mc = OutputKind::MultipleChoice;
        const std::vector<std::string> acc = {"acc"};
        const std::vector<std::string> acc_norm = {"acc", "acc_norm"};
        const std::string arc_url =
            "https://ai2-public-datasets.s3.amazonaws.com/arc/ARC-V1-Feb2018.zip";
        std::map<std::string, TaskDef> m;
        m["arc_easy"] = make_def(
            "arc_easy", mc, acc_norm, "test", "train", 1, arc_url,
            {"", "arc_easy", "ARC-Easy", "ARC-V1-Feb2018/ARC-Easy", "ARC-V1-Feb2018-2/ARC-Easy"});
        m["arc_easy"].hub_repos = {"allenai/ai2_arc", "ai2_arc"};
        m["arc_easy"].hub_config = "ARC-Easy";
        m["arc_challenge"] =
            make_def("arc_challenge", mc, acc_norm, "test", "train", 1, arc_url,
                     {"", "arc_challenge", "ARC-Challenge", "ARC-V1-Feb2018/ARC-Challenge",
                      "ARC-V1-Feb2018-2/ARC-Challenge"});
        m["arc_challenge"].hub_repos = {"allenai/ai2_arc", "ai2_arc"};
        m["arc_challenge"].hub_config = "ARC-Challenge";
        m["boolq"] = make_def("boolq", mc, acc, "validation", "train", 2,
                              "https://storage.googleapis.com/boolq/dev.jsonl (and train.jsonl)",
                              {"boolq", "BoolQ"});
        m["boolq"].exclude_eval_doc = true;
        m["boolq"].hub_repos = {"aps/super_glue", "super_glue"};
        m["boolq"].hub_config = "boolq";
        m["winogrande"] = make_def(
            "winogrande", mc, acc, "validation", "train", 1,
            "https://storage.googleapis.com/ai2-mosaic/public/winogrande/winogrande_1.1.zip",
            {"winogrande", "winogrande_1.1", "winogrande/winogrande_1.1"});
        m["winogrande"].multiple_input = true;
        m["winogrande"].exclude_eval_doc = true;
        m["winogrande"].hub_repos = {"allenai/winogrande", "winogrande"};
        m["winogrande"].hub_config = "winogrande_xl";
        m["hellaswag"] =
            make_def("hellaswag", mc, acc_norm, "validation", "train", 1,
                     "https://github.com/rowanz/hellaswag/tree/master/data", {"", "hellaswag"});
        m["hellaswag"].exclude_eval_doc = true;
        m["hellaswag"].hub_repos = {"Rowan/hellaswag", "hellaswag"};
        m["piqa"] = make_def("piqa", mc, acc_norm, "validation", "train", 1,
                             "https://yonatanbisk.com/piqa/data/ (train.jsonl, train-labels.lst, "
                             "valid.jsonl, valid-labels.lst)",
                             {"piqa", "PIQA", "physicaliqa-train-dev"});
        m["piqa"].exclude_eval_doc = true;
        m["piqa"].hub_repos = {"baber/piqa", "ybisk/piqa", "piqa"};
        m["openbookqa"] = make_def(
            "openbookqa", mc, acc_norm, "test", "train", 1,
            "https://ai2-public-datasets.s3.amazonaws.com/open-book-qa/OpenBookQA-V1-Sep2018.zip",
            {"openbookqa", "OpenBookQA-V1-Sep2018/Data/Main", "openbookqa/Data/Main", "Data/Main",
             "Main"});
        m["openbookqa"].hub_repos = {"allenai/openbookqa", "openbookqa"};
        m["openbookqa"].hub_config = "main";
        m["rte"] = make_def("rte", mc, acc, "validation", "train", 1,
                            "https://dl.fbaipublicfiles.com/glue/data/RTE.zip",
                            {"rte", "RTE", "glue_data/RTE"});
        m["rte"].exclude_eval_doc = true;
        m["rte"].hub_repos = {"nyu-mll/glue", "glue"};
        m["rte"].hub_config = "rte";
        m["mmlu"] = make_def("mmlu", mc, acc, "test", "dev", 2,
                             "https://people.eecs.berkeley.edu/~hendrycks/data.tar",
                             {"mmlu/data", "data", "mmlu", ""});
        m["mmlu"].first_n = true;
        m["mmlu"].hub_repos = {"cais/mmlu", "hails/mmlu_no_train", "mmlu"};
        // No training or validation split: few-shot examples come from the test split itself,
        // and (fewshot split None != test_split "test") the document is not left out.
        m["lambada_openai"] = make_def(
            "lambada_openai", OutputKind::Loglikelihood, {"perplexity", "acc"}, "test", "test", 1,
            "https://openaipublic.blob.core.windows.net/gpt-2/data/lambada_test.jsonl",
            {"", "lambada", "lambada_openai"});
        m["lambada_openai"].hub_repos = {"EleutherAI/lambada_openai", "lambada_openai"};
        return m;
    }();
    return defs;
}

// mmlu_<subject> → ("mmlu", subject); otherwise (name, "").
std::pair<std::string, std::string> split_name(const std::string& name) {
    if (name.rfind("mmlu_", 0) == 0) {
        const std::string subject = name.substr(5);
        if (std::find(kMmluSubjects.begin(), kMmluSubjects.end(), subject) != kMmluSubjects.end()) {
            return {"mmlu", subject};
        }
    }
    return {name, ""};
}

const TaskDef& task_def(const std::string& name) {
    const auto [base, subject] = split_name(name);
    const auto& defs = task_defs();
    const auto it = defs.find(base);
    if (it == defs.end()) {
        std::string known;
        for (const std::string& n : task_names()) {
            if (!known.empty()) known += ", ";
            known += n;
        }
        usage_fail("unknown task '{}'; known tasks: {} (and mmlu_<subject> for one MMLU subject)",
                   name, known);
    }
    return it->second;
}

// ---- readers: the original release's rows, as the harness's dataset holds them ----

// ARC and OpenBookQA share a layout: question.stem, question.choices[{text, label}], answerKey.
// The hub's copies flatten it: question (ARC) or question_stem (OpenBookQA), and choices
// {text: [...], label: [...]}.
Doc arc_like_doc(const JsonLine& row, bool openbookqa) {
    const std::string where = row.where;
    const nlohmann::json& j = row.value;
    Doc d;
    d.id = where;
    std::vector<std::string> labels;
    std::string stem;
    const bool hub = j.contains("choices");
    if (hub) {
        stem = json_string(j, openbookqa ? "question_stem" : "question", where);
        d.choices = json_strings(j, "choices.text", where);
        labels = json_strings(j, "choices.label", where);
        check(!d.choices.empty() && labels.size() == d.choices.size(),
              "{}: fields 'choices.text' and 'choices.label' should be lists of one length, "
              "got {} and {}",
              where, d.choices.size(), labels.size());
    } else {
        stem = json_string(j, "question.stem", where);
        const nlohmann::json& choices = json_field(j, "question.choices", where);
        check(choices.is_array() && !choices.empty(),
              "{}: field 'question.choices' should be a non-empty list, got {}", where,
              choices.dump());
        for (const auto& c : choices) {
            d.choices.push_back(json_string(c, "text", where));
            labels.push_back(json_string(c, "label", where));
        }
    }
    std::string key = json_string(j, "answerKey", where);
    // OpenBookQA's YAML: choices.label.index(answerKey.lstrip()).
    if (openbookqa) key = python_lstrip(key);
    const auto it = std::find(labels.begin(), labels.end(), key);
    check(it != labels.end(), "{}: field 'answerKey' is '{}', not one of the choice labels", where,
          key);
    d.gold = static_cast<int>(it - labels.begin());
    const nlohmann::json choice_fields = {{"text", d.choices}, {"label", labels}};
    const std::string id =
        j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : "";
    if (openbookqa) {
        d.text = stem;  // doc_to_text: question_stem
        d.fields = {{"id", id},
                    {"question_stem", stem},
                    {"choices", choice_fields},
                    {"answerKey", json_string(j, "answerKey", where)}};
    } else {
        d.text = "Question: " + stem;
        d.text += "\nAnswer:";
        d.fields = {{"id", id}, {"question", stem}, {"choices", choice_fields}, {"answerKey", key}};
    }
    return d;
}

Split read_arc_like(const fs::path& file, bool openbookqa) {
    Split s{file.string(), {}};
    for (const JsonLine& row : read_jsonl(file)) s.docs.push_back(arc_like_doc(row, openbookqa));
    return s;
}

// BoolQ's original release (question, title, answer, passage) or SuperGLUE's copy of it
// (question, passage, idx, label). The harness reads SuperGLUE's, whose passage is the
// original's title, " -- ", then the passage: that text is what the prompt holds.
Split read_boolq(const fs::path& file) {
    Split s{file.string(), {}};
    size_t idx = 0;
    for (const JsonLine& row : read_jsonl(file)) {
        const std::string where = row.where;
        Doc d;
        d.id = where;
        const std::string question = json_string(row.value, "question", where);
        std::string passage = json_string(row.value, "passage", where);
        const bool superglue = !row.value.contains("title") && row.value.contains("label");
        if (!superglue) passage = json_string(row.value, "title", where) + " -- " + passage;
        const char* answer_field = superglue ? "label" : "answer";
        const nlohmann::json& answer = json_field(row.value, answer_field, where);
        check(answer.is_boolean() || (answer.is_number_integer() && (answer == 0 || answer == 1)),
              "{}: field '{}' should be true or false, got {}", where, answer_field, answer.dump());
        d.text = passage + "\nQuestion: ";
        d.text += question;
        d.text += "?\nAnswer:";
        d.choices = {"no", "yes"};
        d.gold = (answer.is_boolean() ? answer.get<bool>() : answer.get<int>() == 1) ? 1 : 0;
        d.fields = {
            {"question", question}, {"passage", passage}, {"idx", idx++}, {"label", d.gold}};
        s.docs.push_back(std::move(d));
    }
    return s;
}

Split read_winogrande(const fs::path& file) {
    Split s{file.string(), {}};
    for (const JsonLine& row : read_jsonl(file)) {
        const std::string where = row.where;
        Doc d;
        d.id = where;
        const std::string sentence = json_string(row.value, "sentence", where);
        const std::string option1 = json_string(row.value, "option1", where);
        const std::string option2 = json_string(row.value, "option2", where);
        const std::string answer = json_string(row.value, "answer", where);
        check(answer == "1" || answer == "2",
              "{}: field 'answer' should be \"1\" or \"2\", got '{}'", where, answer);
        const size_t blank = sentence.find('_');
        check(blank != std::string::npos, "{}: field 'sentence' has no '_' blank", where);
        // preprocess_winogrande.py: the choices are the sentence up to the blank with each
        // option; the target is the rest after the blank, stripped.
        const std::string head = sentence.substr(0, blank);
        d.choices = {head + option1, head + option2};
        const std::string rest = python_strip(sentence.substr(blank + 1));
        d.target = rest;
        d.gold = answer == "1" ? 0 : 1;
        d.fields = {
            {"sentence", sentence}, {"option1", option1}, {"option2", option2}, {"answer", answer}};
        s.docs.push_back(std::move(d));
    }
    return s;
}

Split read_hellaswag_split(const fs::path& file) {
    Split s{file.string(), {}};
    std::vector<HellaSwagItem> items;
    if (file.extension() == ".parquet") {
        // The hub's copy, every shard of the split.
        for (const JsonLine& row : read_jsonl(file))
            items.push_back(hellaswag_item_from_json(row.value, row.where));
    } else {
        items = read_hellaswag(file);
    }
    for (HellaSwagItem& item : items) {
        Doc d;
        d.id = item.source;
        d.text = item.context;
        d.choices.assign(item.endings.begin(), item.endings.end());
        d.gold = item.label;
        d.fields = {{"activity_label", item.activity_label},
                    {"ctx", item.raw_context},
                    {"endings", item.raw_endings},
                    {"label", std::to_string(item.label)},
                    {"query", d.text},
                    {"choices", d.choices},
                    {"gold", d.gold}};
        s.docs.push_back(std::move(d));
    }
    return s;
}

// An integer field that must be one of 0 .. count - 1 (the hub's class labels).
int json_class(const nlohmann::json& object, std::string_view field, int count,
               const std::string& where) {
    const nlohmann::json& value = json_field(object, field, where);
    check(value.is_number_integer() && value.get<int64_t>() >= 0 && value.get<int64_t>() < count,
          "{}: field '{}' should be an integer from 0 to {}, got {}", where, field, count - 1,
          value.dump());
    return value.get<int>();
}

// PIQA's release keeps the labels in a file of their own (labels_file); the hub's copy has a
// label field in each row (labels_file empty).
Split read_piqa(const fs::path& file, const fs::path& labels_file) {
    Split s{file.string(), {}};
    const std::vector<JsonLine> rows = read_jsonl(file);
    std::vector<TextLine> labels;
    if (!labels_file.empty()) {
        labels = read_lines(labels_file);
        check(labels.size() == rows.size(), "{}: {} labels for the {} items of {} (cut short?)",
              labels_file.string(), labels.size(), rows.size(), file.string());
    }
    for (size_t i = 0; i < rows.size(); ++i) {
        const std::string where = rows[i].where;
        Doc d;
        d.id = where;
        const std::string goal = json_string(rows[i].value, "goal", where);
        const std::string sol1 = json_string(rows[i].value, "sol1", where);
        const std::string sol2 = json_string(rows[i].value, "sol2", where);
        if (labels_file.empty()) {
            d.gold = json_class(rows[i].value, "label", 2, where);
        } else {
            const std::string& label = labels[i].text;
            check(label == "0" || label == "1", "{}: label should be 0 or 1, got '{}'",
                  file_line(labels_file, labels[i].line), label);
            d.gold = label == "1" ? 1 : 0;
        }
        d.text = "Question: " + goal;
        d.text += "\nAnswer:";
        d.choices = {sol1, sol2};
        d.fields = {{"goal", goal}, {"sol1", sol1}, {"sol2", sol2}, {"label", d.gold}};
        s.docs.push_back(std::move(d));
    }
    return s;
}

// An RTE pair; gold 0 is entailment ("True").
Doc rte_doc(const std::string& sentence1, const std::string& sentence2, int gold,
            const nlohmann::json& idx, const std::string& where) {
    Doc d;
    d.id = where;
    d.text = sentence1 + "\nQuestion: ";
    d.text += sentence2;
    d.text += " True or False?\nAnswer:";
    d.choices = {"True", "False"};
    d.gold = gold;
    d.fields = {{"sentence1", sentence1}, {"sentence2", sentence2}, {"label", gold}, {"idx", idx}};
    return d;
}

// GLUE's TSV, read as its Hugging Face builder does: tab-separated, no quoting, a header.
Split read_rte(const fs::path& file) {
    Split s{file.string(), {}};
    const std::vector<TextLine> lines = read_lines(file);
    check(!lines.empty(), "{}: empty file", file.string());
    auto split_tabs = [](const std::string& line) {
        std::vector<std::string> fields;
        size_t start = 0;
        while (true) {
            const size_t tab = line.find('\t', start);
            fields.push_back(line.substr(start, tab == std::string::npos ? tab : tab - start));
            if (tab == std::string::npos) return fields;
            start = tab + 1;
        }
    };
    const std::vector<std::string> header = split_tabs(lines[0].text);
    auto column = [&](const std::string& name) {
        const auto it = std::find(header.begin(), header.end(), name);
        check(it != header.end(), "{}: the header has no '{}' column",
              file_line(file, lines[0].line), name);
        return static_cast<size_t>(it - header.begin());
    };
    const size_t c_index = column("index"), c_s1 = column("sentence1"), c_s2 = column("sentence2"),
                 c_label = column("label");
    for (size_t i = 1; i < lines.size(); ++i) {
        const std::string where = file_line(file, lines[i].line);
        const std::vector<std::string> f = split_tabs(lines[i].text);
        check(f.size() == header.size(), "{}: {} tab-separated fields, the header has {} ({})",
              where, f.size(), header.size(),
              f.size() < header.size() ? "cut short?" : "extra tab?");
        const std::string& label = f[c_label];
        check(label == "entailment" || label == "not_entailment",
              "{}: field 'label' should be entailment or not_entailment, got '{}'", where, label);
        s.docs.push_back(
            rte_doc(f[c_s1], f[c_s2], label == "entailment" ? 0 : 1, f[c_index], where));
    }
    check(!s.docs.empty(), "{}: no documents in the file", file.string());
    return s;
}

// The hub's GLUE rows: sentence1, sentence2, label (0 entailment, 1 not_entailment), idx.
Split read_rte_rows(const fs::path& file) {
    Split s{file.string(), {}};
    for (const JsonLine& row : read_jsonl(file)) {
        const nlohmann::json idx = row.value.contains("idx") ? row.value["idx"] : nlohmann::json();
        s.docs.push_back(rte_doc(json_string(row.value, "sentence1", row.where),
                                 json_string(row.value, "sentence2", row.where),
                                 json_class(row.value, "label", 2, row.where), idx, row.where));
    }
    return s;
}

// One MMLU question: the YAML's question.strip(), the four answers lettered, "Answer:".
Doc mmlu_doc(const std::string& question, std::vector<std::string> answers, int gold,
             const std::string& subject, const std::string& where) {
    Doc d;
    d.id = where;
    d.text = python_strip(question);
    for (size_t k = 0; k < answers.size(); ++k) {
        d.text += '\n';
        d.text += static_cast<char>('A' + k);
        d.text += ". ";
        d.text += answers[k];
    }
    d.text += "\nAnswer:";
    d.choices = {"A", "B", "C", "D"};
    d.gold = gold;
    d.fields = {{"question", question},
                {"subject", subject},
                {"choices", std::move(answers)},
                {"answer", gold}};
    return d;
}

// Hendrycks's headerless CSV: question, A, B, C, D, answer letter.
Split read_mmlu(const fs::path& file, const std::string& subject) {
    Split s{file.string(), {}};
    const std::string text = read_file_text(file);
    size_t row_number = 0;
    for (const CsvRecord& record : parse_csv_records(text, file.string())) {
        ++row_number;
        if (record.fields.size() == 1 && record.fields[0].empty()) continue;  // a blank line
        const std::string where =
            file_line(file, record.line) + " (row " + std::to_string(row_number) + ")";
        check(record.fields.size() == 6,
              "{}: {} fields, expected 6 (question, A, B, C, D, answer){}", where,
              record.fields.size(), record.fields.size() < 6 ? "; cut short?" : "");
        const std::string& answer = record.fields[5];
        check(answer.size() == 1 && answer[0] >= 'A' && answer[0] <= 'D',
              "{}: field 'answer' (column 6) should be A, B, C or D, got '{}'", where, answer);
        s.docs.push_back(
            mmlu_doc(record.fields[0],
                     std::vector<std::string>(record.fields.begin() + 1, record.fields.begin() + 5),
                     answer[0] - 'A', subject, file_line(file, record.line)));
    }
    check(!s.docs.empty(), "{}: no questions in the file", file.string());
    return s;
}

// The hub's cais/mmlu rows: question, subject, choices (4), answer 0-3.
Split read_mmlu_rows(const fs::path& file, const std::string& subject) {
    Split s{file.string(), {}};
    for (const JsonLine& row : read_jsonl(file)) {
        std::vector<std::string> choices = json_strings(row.value, "choices", row.where);
        check(choices.size() == 4, "{}: field 'choices' should hold 4 answers, holds {}", row.where,
              choices.size());
        s.docs.push_back(mmlu_doc(json_string(row.value, "question", row.where), std::move(choices),
                                  json_class(row.value, "answer", 4, row.where), subject,
                                  row.where));
    }
    return s;
}

Split read_lambada(const fs::path& file) {
    Split s{file.string(), {}};
    for (const JsonLine& row : read_jsonl(file)) {
        const std::string where = row.where;
        const std::string text = json_string(row.value, "text", where);
        // The YAML: text.split(' ')[:-1] joined by ' ', and ' ' + text.split(' ')[-1]: a split
        // on single spaces, so the context is everything before the last space.
        const size_t space = text.rfind(' ');
        Doc d;
        d.id = where;
        d.text = space == std::string::npos ? "" : text.substr(0, space);
        d.target = " " + (space == std::string::npos ? text : text.substr(space + 1));
        d.fields = row.value;
        s.docs.push_back(std::move(d));
    }
    return s;
}

// The eval or few-shot split of one task (one MMLU subject).
Split load_split(const std::string& base, const std::string& subject, bool fewshot,
                 const TaskOptions& options) {
    const TaskDef& def = task_def(base);
    const HubSplit hub{def.hub_repos, base == "mmlu" ? subject : def.hub_config,
                       fewshot ? def.info.fewshot_split : def.info.eval_split};
    auto find = [&](std::vector<std::string> names) {
        return find_task_file(base, names, def.subfolders, def.info.url, options, &hub);
    };
    // The hub's Parquet copy, found when the release's files are not there.
    auto from_hub = [](const fs::path& p) { return p.extension() == ".parquet"; };
    if (base == "arc_easy" || base == "arc_challenge") {
        const std::string stem = base == "arc_easy" ? "ARC-Easy" : "ARC-Challenge";
        return read_arc_like(find({stem + (fewshot ? "-Train.jsonl" : "-Test.jsonl")}), false);
    }
    if (base == "boolq") {
        // dev.jsonl: the original release; val.jsonl: SuperGLUE's BoolQ.zip.
        if (fewshot) return read_boolq(find({"train.jsonl"}));
        return read_boolq(find({"dev.jsonl", "val.jsonl"}));
    }
    if (base == "winogrande") {
        return read_winogrande(find({fewshot ? "train_xl.jsonl" : "dev.jsonl"}));
    }
    if (base == "hellaswag") {
        if (fewshot) return read_hellaswag_split(find({"hellaswag_train.jsonl"}));
        return read_hellaswag_split(
            find({"hellaswag_val.jsonl", "hellaswag_val_full.txt.bz2", "hellaswag_val_full.txt"}));
    }
    if (base == "piqa") {
        const std::string stem = fewshot ? "train" : "valid";
        const fs::path items = find({stem + ".jsonl"});
        if (from_hub(items)) return read_piqa(items, {});
        const fs::path labels = items.parent_path() / (stem + "-labels.lst");
        check(fs::is_regular_file(labels), "piqa: {} has no {} beside it (get it from {})",
              items.string(), labels.filename().string(), def.info.url);
        return read_piqa(items, labels);
    }
    if (base == "openbookqa")
        return read_arc_like(find({fewshot ? "train.jsonl" : "test.jsonl"}), true);
    if (base == "rte") {
        const fs::path file = find({fewshot ? "train.tsv" : "dev.tsv"});
        return from_hub(file) ? read_rte_rows(file) : read_rte(file);
    }
    if (base == "mmlu") {
        const std::string split = fewshot ? "dev" : "test";
        std::vector<std::string> subfolders;
        for (const std::string& f : def.subfolders) {
            subfolders.push_back(f.empty() ? split : f + "/" + split);
        }
        const fs::path file = find_task_file("mmlu_" + subject, {subject + "_" + split + ".csv"},
                                             subfolders, def.info.url, options, &hub);
        return from_hub(file) ? read_mmlu_rows(file, subject) : read_mmlu(file, subject);
    }
    if (base == "lambada_openai") return read_lambada(find({"lambada_test.jsonl"}));
    fail("task {} has no reader", base);
}

// ---- the harness's prompt ----

// One labelled few-shot example as build_qa_turn renders it: question, target delimiter,
// answer, fewshot delimiter; a document whose answer is empty contributes its question alone.
std::string fewshot_example(const TaskDef& def, const Doc& d) {
    std::string q, a;
    if (def.multiple_input) {
        q = d.choices[static_cast<size_t>(d.gold)];
        a = d.target;
    } else if (def.info.kind == OutputKind::Loglikelihood) {
        q = d.text;
        a = d.target;
    } else {
        q = d.text;
        a = d.choices[static_cast<size_t>(d.gold)];
    }
    if (a.empty()) return q;
    q += kTargetDelimiter;
    q += a;
    q += kFewshotDelimiter;
    return q;
}

// ContextSampler.sample / FirstNSampler.sample for one evaluated document.
std::vector<const Doc*> sample_fewshot(const TaskDef& def, const Split& pool, const Doc& doc, int n,
                                       PythonRandom& rnd) {
    std::vector<const Doc*> out;
    if (n == 0) return out;
    const size_t k = static_cast<size_t>(n);
    if (def.first_n) {
        for (size_t i = 0; i < k; ++i) out.push_back(&pool.docs[i]);
        return out;
    }
    if (!def.exclude_eval_doc) {
        for (size_t i : rnd.sample(pool.docs.size(), k)) out.push_back(&pool.docs[i]);
        return out;
    }
    for (size_t i : rnd.sample(pool.docs.size(), k + 1)) {
        if (pool.docs[i].fields != doc.fields && out.size() < k) out.push_back(&pool.docs[i]);
    }
    if (out.size() < k) {
        // More than one copy of the document was drawn: the harness resamples from the pool
        // with every copy removed.
        std::vector<const Doc*> others;
        for (const Doc& d : pool.docs) {
            if (d.fields != doc.fields) others.push_back(&d);
        }
        check(others.size() >= k,
              "{}: the few-shot split {} has only {} documents besides this one", doc.id, pool.file,
              others.size());
        out.clear();
        for (size_t i : rnd.sample(others.size(), k)) out.push_back(others[i]);
    }
    return out;
}

std::string description_of(const std::string& subject) {
    if (subject.empty()) return "";
    std::string spaced = subject;
    std::replace(spaced.begin(), spaced.end(), '_', ' ');
    std::string d = "The following are multiple choice questions (with answers) about ";
    d += spaced;
    d += ".\n\n";
    return d;
}

void build_one(const TaskDef& def, const std::string& task_name, const std::string& subject,
               const TaskOptions& options, std::vector<Instance>& out) {
    const std::string& base = def.info.name;
    const Split eval = load_split(base, subject, false, options);
    std::optional<Split> pool;
    if (options.num_fewshot > 0) {
        pool = load_split(base, subject, true, options);
        const size_t drawn =
            static_cast<size_t>(options.num_fewshot) + (def.exclude_eval_doc ? 1 : 0);
        if (drawn > pool->docs.size()) {
            usage_fail(
                "{}: --num-fewshot {} is larger than the few-shot split allows: {} ({} split) "
                "holds {} documents{}",
                task_name, options.num_fewshot, pool->file, def.info.fewshot_split,
                pool->docs.size(),
                def.exclude_eval_doc
                    ? " and the harness draws num_fewshot + 1 of them to leave out the document "
                      "itself"
                    : "");
        }
    }
    // One generator per task, seeded once (Task.set_fewshot_seed) and advanced document by
    // document in evaluation order, as the harness's sampler is.
    PythonRandom rnd(options.seed);
    const std::string description = description_of(subject);
    size_t count = eval.docs.size();
    if (options.limit > 0) count = std::min(count, static_cast<size_t>(options.limit));
    for (size_t i = 0; i < count; ++i) {
        const Doc& doc = eval.docs[i];
        std::string prefix = description;
        if (pool) {
            for (const Doc* ex : sample_fewshot(def, *pool, doc, options.num_fewshot, rnd)) {
                prefix += fewshot_example(def, *ex);
            }
        }
        Instance inst;
        inst.doc_id = doc.id;
        inst.group = subject;
        inst.doc = doc.fields;
        inst.gold = doc.gold;
        if (def.info.kind == OutputKind::Loglikelihood) {
            inst.candidates.push_back({prefix + doc.text, doc.target});
        } else if (def.multiple_input) {
            inst.choices = doc.choices;
            std::string continuation = kTargetDelimiter;
            continuation += doc.target;
            for (const std::string& c : doc.choices)
                inst.candidates.push_back({prefix + c, continuation});
        } else {
            inst.choices = doc.choices;
            const std::string context = prefix + doc.text;
            for (const std::string& c : doc.choices) {
                std::string continuation = kTargetDelimiter;
                continuation += c;
                inst.candidates.push_back({context, std::move(continuation)});
            }
        }
        out.push_back(std::move(inst));
    }
}

}  // namespace

std::vector<std::string> task_names() {
    return {"arc_easy", "arc_challenge", "boolq", "winogrande", "hellaswag",
            "piqa",     "openbookqa",    "rte",   "mmlu",       "lambada_openai"};
}

const std::vector<std::string>& mmlu_subjects() {
    return kMmluSubjects;
}

const TaskInfo& task_info(const std::string& name) {
    return task_def(name).info;
}

std::vector<Instance> build_task(const std::string& name, const TaskOptions& options) {
    const TaskDef& def = task_def(name);
    usage_check(options.num_fewshot >= 0, "--num-fewshot must be 0 or more, got {}",
                options.num_fewshot);
    usage_check(options.limit >= 0, "--limit must be 0 (all) or more, got {}", options.limit);
    std::vector<Instance> out;
    if (def.info.name == "mmlu") {
        const std::string subject = split_name(name).second;
        if (!subject.empty()) {
            build_one(def, name, subject, options, out);
        } else {
            for (const std::string& s : kMmluSubjects) build_one(def, "mmlu_" + s, s, options, out);
        }
    } else {
        build_one(def, name, "", options, out);
    }
    return out;
}

}  // namespace greenmoe::tasks

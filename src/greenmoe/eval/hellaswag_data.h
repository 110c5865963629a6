// Readers for the HellaSwag validation set: llama.cpp's 6-line text format and the raw jsonl.
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace greenmoe {

// One multiple-choice item. lm-evaluation-harness scores `context + " " + endings[i]`;
// nanoGPT / llm.c score `raw_context + " " + raw_endings[i]`.
struct HellaSwagItem {
    std::string activity_label;
    // The text the endings continue, with the activity label in front
    // ("Roof shingle removal: A man is sitting on a roof. he"). Both formats give it this
    // way: the text format's first line is exactly this, and lm-evaluation-harness's query is
    // preprocess(activity_label + ": " + ctx). No trailing space; the scorer adds the separator.
    std::string context;
    std::array<std::string, 4> endings;
    // The jsonl's own text, unprocessed, as nanoGPT's hellaswag.py uses it: "ctx" (no
    // activity label) and the endings as written. The text format has only its cleaned
    // lines, so there these equal context and endings.
    std::string raw_context;
    std::array<std::string, 4> raw_endings;
    int label = -1;      // 0..3
    std::string source;  // "file:line" of the item, for messages
};

// The 6-lines-per-item text format that `llama-perplexity --hellaswag` reads: the context line
// ("activity_label: ctx", used whole as `context`; `activity_label` is the part before the
// first ": "), the label 0-3, then the 4 endings. Reads a .bz2 (recognised by its extension or
// its "BZh" magic) while decompressing, or plain text. A trailing '\r' on a line is dropped.
// `limit` > 0 stops after that many items.
std::vector<HellaSwagItem> read_hellaswag_text(const std::filesystem::path& path, size_t limit = 0);

// The raw hellaswag_val.jsonl of rowanz/hellaswag, one JSON object a line with activity_label,
// ctx_a, ctx_b, endings (4 strings) and label (an integer, or a string as the Hugging Face copy
// has it), preprocessed as lm-evaluation-harness's hellaswag task does:
//   context = preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b)),
//   endings[i] = preprocess(endings[i]),
// where preprocess strips, turns " [title]" into ". ", deletes "[...]" markers and turns each
// "  " into " " (one pass, as Python's str.replace). capitalize is Python's str.capitalize on
// ASCII letters (first upper, the rest lower); other bytes are left alone.
// The results are close to, not identical with, the text format: that file keeps ctx_b as is
// ("... roof. he", not "He") and keeps some bracketed text ("[www.kiddio.org]").
std::vector<HellaSwagItem> read_hellaswag_jsonl(const std::filesystem::path& path,
                                                size_t limit = 0);

// One object of that jsonl, or one row of the Hugging Face hub's Parquet copy (Rowan/hellaswag:
// the same fields, label a string), preprocessed as above; `at` names it in messages.
HellaSwagItem hellaswag_item_from_json(const nlohmann::json& doc, const std::string& at);

// The rows of one Parquet file of the hub's copy, as hellaswag_item_from_json reads them.
std::vector<HellaSwagItem> read_hellaswag_parquet(const std::filesystem::path& path,
                                                  size_t limit = 0);

// Picks the reader by extension: .jsonl → read_hellaswag_jsonl; .txt or .bz2 →
// read_hellaswag_text; .parquet → read_hellaswag_parquet.
std::vector<HellaSwagItem> read_hellaswag(const std::filesystem::path& path, size_t limit = 0);

// lm-evaluation-harness's hellaswag preprocess(text), exposed for tests.
std::string hellaswag_preprocess(const std::string& text);

}  // namespace greenmoe

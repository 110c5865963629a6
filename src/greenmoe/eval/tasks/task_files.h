// Finding a benchmark's original files in the data folders, and strict readers for their
// JSONL, TSV and label-list layouts whose errors name the file, the line and the field.
#pragma once

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "greenmoe/eval/tasks/tasks.h"

namespace greenmoe::tasks {

// The folders searched for data, in order: options.data_dir, $GREENMOE_DATA,
// options.cache_dir and its data/ subfolder (empty entries left out).
std::vector<std::filesystem::path> data_roots(const TaskOptions& options);

// The first of `names` found in <root>/<subfolder> over data_roots() × subfolders ("" is the
// root itself), and then in each .zip directly in a root, as <subfolder>/<name> inside it: the
// path returned then runs through the archive (<root>/x.zip/<subfolder>/<name>), which
// read_file_text and the readers below follow. Throws Error naming the task, the names,
// every folder and archive searched and `url`.
std::filesystem::path find_task_file(const std::string& task, const std::vector<std::string>& names,
                                     const std::vector<std::string>& subfolders,
                                     const std::string& url, const TaskOptions& options);

// "file:line" for messages.
std::string file_line(const std::filesystem::path& path, size_t line);

// One JSON object per line; blank lines skipped. A line that is not a JSON object (a file
// cut short mid-line included) throws Error naming file:line.
struct JsonLine {
    size_t line = 0;
    nlohmann::json value;
};
std::vector<JsonLine> read_jsonl(const std::filesystem::path& path);

// The whole file (or archive member); Error naming it when it cannot be read.
std::string read_file_text(const std::filesystem::path& path);

// Non-empty lines with their numbers, a trailing '\r' dropped.
struct TextLine {
    size_t line = 0;
    std::string text;
};
std::vector<TextLine> read_lines(const std::filesystem::path& path);

// A field of a JSON object by dotted path ("question.stem"); Error naming `where` and the
// field when it is missing or of another type.
const nlohmann::json& json_field(const nlohmann::json& object, std::string_view field,
                                 const std::string& where);
std::string json_string(const nlohmann::json& object, std::string_view field,
                        const std::string& where);
std::vector<std::string> json_strings(const nlohmann::json& object, std::string_view field,
                                      const std::string& where);

}  // namespace greenmoe::tasks

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

// One split of a data set as the Hugging Face hub serves it, in Parquet: the repository's
// own files (`hf download REPO --repo-type dataset`) <repo>/<config>/<split>-00000-of-NNNNN.parquet
// (data/ for a repository with one configuration), or the hub's conversion branch
// (refs/convert/parquet) <repo>/<config>/<split>/0000.parquet. The repository folder may be
// named owner/name or name; a folder holding the configurations directly is found too.
struct HubSplit {
    std::vector<std::string> repos;  // "allenai/ai2_arc" first, then older names of it
    std::string config;              // "ARC-Easy"; "default" for a repository with one
    std::string split;               // "test"
};

// The first of `names` found in <root>/<subfolder> over data_roots() × subfolders ("" is the
// root itself), and then in each .zip directly in a root, as <subfolder>/<name> inside it: the
// path returned then runs through the archive (<root>/x.zip/<subfolder>/<name>), which
// read_file_text and the readers below follow. Failing that, and given `hub`, the first
// Parquet shard of that split in any data root. Throws Error naming the task, the names,
// every folder and archive searched, `url` and the hub data set.
std::filesystem::path find_task_file(const std::string& task, const std::vector<std::string>& names,
                                     const std::vector<std::string>& subfolders,
                                     const std::string& url, const TaskOptions& options,
                                     const HubSplit* hub = nullptr);

// Every shard of the split whose first shard is `first`: <split>-00000-of-00003.parquet gives
// the three -0000k-of-00003 files (Error naming a missing one), 0000.parquet the consecutive
// 0000, 0001, ... in its folder; any other file is its own only shard.
std::vector<std::filesystem::path> parquet_split_shards(const std::filesystem::path& first);

// "file:line" for messages.
std::string file_line(const std::filesystem::path& path, size_t line);

// One JSON object per line; blank lines skipped. A line that is not a JSON object (a file
// cut short mid-line included) throws Error naming file:line. A .parquet file gives the rows
// of every shard of its split (parquet_split_shards), `where` naming shard and row.
struct JsonLine {
    size_t line = 0;    // the line, or the row counted over the split from 1
    std::string where;  // "file:line", or "file row N" (N counted within that shard from 1)
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

// Data folders and strict line-numbered readers for the benchmark tasks (see task_files.h).
#include "greenmoe/eval/tasks/task_files.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/eval/tasks/hub_download.h"
#include "greenmoe/io/parquet/parquet_reader.h"
#include "greenmoe/io/zip_archive.h"

namespace greenmoe::tasks {

namespace fs = std::filesystem;

std::vector<fs::path> data_roots(const TaskOptions& options) {
    std::vector<fs::path> roots;
    auto add = [&](const fs::path& p) {
        if (p.empty()) return;
        for (const auto& r : roots) {
            if (r == p) return;
        }
        roots.push_back(p);
    };
    add(options.data_dir);
    if (const char* env = std::getenv("GREENMOE_DATA"); env && *env) add(env);
    add(options.cache_dir);
    if (!options.cache_dir.empty()) add(options.cache_dir / "data");
    return roots;
}

namespace {

// The .zip files directly in a folder, by name.
std::vector<fs::path> archives_in(const fs::path& dir) {
    std::vector<fs::path> zips;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().extension() == ".zip" && entry.is_regular_file(ec)) {
            zips.push_back(entry.path());
        }
    }
    std::sort(zips.begin(), zips.end());
    return zips;
}

// The split's first shard in `dir`, in either of the hub's layouts; empty when absent.
fs::path hub_split_in(const fs::path& dir, const std::string& split) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return {};
    const std::string first_of = split + "-00000-of-";
    std::vector<fs::path> found;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with(first_of) && name.ends_with(".parquet")) found.push_back(entry.path());
    }
    if (!found.empty()) return *std::min_element(found.begin(), found.end());
    if (fs::is_regular_file(dir / (split + ".parquet"), ec)) return dir / (split + ".parquet");
    if (fs::is_regular_file(dir / split / "0000.parquet", ec)) return dir / split / "0000.parquet";
    return {};
}

// The folders a hub split may sit in under one data root, most specific first.
std::vector<fs::path> hub_folders(const fs::path& root, const HubSplit& hub) {
    std::vector<std::string> configs = {hub.config};
    if (hub.config == "default") configs.push_back("data");
    std::vector<fs::path> dirs;
    for (const std::string& repo : hub.repos) {
        const size_t slash = repo.find('/');
        std::vector<std::string> repo_dirs = {repo};
        if (slash != std::string::npos) repo_dirs.push_back(repo.substr(slash + 1));
        for (const std::string& r : repo_dirs) {
            for (const std::string& c : configs) dirs.push_back(root / r / c);
        }
    }
    // The repository folder itself given as the data folder: its configurations directly
    // inside. A default configuration's data/ is not looked for there, as it would not say
    // which data set it is.
    if (hub.config != "default") dirs.push_back(root / hub.config);
    return dirs;
}

}  // namespace

std::vector<fs::path> parquet_split_shards(const fs::path& first) {
    const std::string name = first.filename().string();
    const fs::path dir = first.parent_path();
    // <split>-00000-of-NNNNN.parquet
    const size_t of = name.rfind("-00000-of-");
    if (of != std::string::npos && name.ends_with(".parquet")) {
        const std::string count_text = name.substr(of + 10, name.size() - of - 10 - 8);
        const bool digits = !count_text.empty() && count_text.size() <= 6 &&
                            std::all_of(count_text.begin(), count_text.end(),
                                        [](char c) { return c >= '0' && c <= '9'; });
        if (digits) {
            const size_t count = std::stoul(count_text);
            check(count >= 1, "{}: a split of 0 shards", first.string());
            std::vector<fs::path> shards;
            for (size_t k = 0; k < count; ++k) {
                const std::string index = fmt::format("{:05d}", k);
                const fs::path p = dir / (name.substr(0, of + 1) + index + name.substr(of + 6));
                check(fs::is_regular_file(p), "{}: shard {} of {} of this split is missing ({})",
                      first.string(), k + 1, count, p.string());
                shards.push_back(p);
            }
            return shards;
        }
    }
    // The conversion branch: 0000.parquet, 0001.parquet, ...
    if (name == "0000.parquet") {
        std::vector<fs::path> shards;
        for (size_t k = 0;; ++k) {
            const fs::path p = dir / fmt::format("{:04d}.parquet", k);
            if (!fs::is_regular_file(p)) break;
            shards.push_back(p);
        }
        return shards;
    }
    return {first};
}

fs::path find_task_file(const std::string& task, const std::vector<std::string>& names,
                        const std::vector<std::string>& subfolders, const std::string& url,
                        const TaskOptions& options, const HubSplit* hub) {
    std::string folders, hub_folders_tried;
    for (const fs::path& root : data_roots(options)) {
        for (const std::string& sub : subfolders) {
            const fs::path dir = sub.empty() ? root : root / sub;
            for (const std::string& name : names) {
                if (fs::is_regular_file(dir / name)) return dir / name;
            }
            folders += "\n  ";
            folders += dir.string();
        }
        // A release as downloaded: the same folders inside a .zip in the data folder.
        for (const fs::path& zip : archives_in(root)) {
            std::optional<ZipArchive> opened;
            try {
                opened = ZipArchive::open(zip);
            } catch (const Error& e) {
                // Another data set's damaged download must not hide this task's files; it
                // is named in the message should this task's be missing.
                folders += "\n  ";
                folders += e.what();
                continue;
            }
            const ZipArchive& archive = *opened;
            for (const std::string& sub : subfolders) {
                for (const std::string& name : names) {
                    const std::string member = sub.empty() ? name : sub + '/' + name;
                    if (archive.contains(member)) return zip / member;
                }
            }
            folders += "\n  ";
            folders += zip.string();
        }
        // The hub's copy in this folder; a folder given earlier wins over any copy later.
        if (hub != nullptr) {
            for (const fs::path& dir : hub_folders(root, *hub)) {
                const fs::path first = hub_split_in(dir, hub->split);
                if (!first.empty()) return first;
                hub_folders_tried += "\n  ";
                hub_folders_tried += dir.string();
            }
        }
    }
    std::string wanted;
    for (const std::string& name : names) {
        if (!wanted.empty()) wanted += " or ";
        wanted += name;
    }
    if (folders.empty()) folders = "\n  (none: no --data-dir, GREENMOE_DATA or cache folder)";
    if (hub == nullptr) {
        fail(
            "{}: {} not found; looked in:{}\nDownload the original release from {} and pass its "
            "folder with --data-dir or GREENMOE_DATA",
            task, wanted, folders, url);
    }
    const std::string not_found = fmt::format(
        "{}: {} not found; looked in:{}\nnor the Hugging Face data set {} ({} split {}, "
        "Parquet) in:{}",
        task, wanted, folders, hub->repos.front(), hub->config, hub->split, hub_folders_tried);
    // The hub's copy, fetched into the cache with its published checksums; a failed download
    // is told between what was searched and what the user can do.
    std::string download_failure;
    if (!options.cache_dir.empty() && hub_downloads_allowed()) {
        try {
            return download_hub_split(task, *hub, options.cache_dir / "data");
        } catch (const Error& e) {
            download_failure = fmt::format("\nand {}", e.what());
        }
    }
    fail(
        "{}{}\nDownload the original release from {}, or the data set with `hf download {} "
        "--repo-type dataset --local-dir DIR/{}`, and pass DIR with --data-dir or GREENMOE_DATA",
        not_found, download_failure, url, hub->repos.front(), hub->repos.front());
}

std::string file_line(const fs::path& path, size_t line) {
    std::string s = path.string();
    s += ':';
    s += std::to_string(line);
    return s;
}

std::string read_file_text(const fs::path& path) {
    if (!fs::exists(path)) {
        if (const auto inside = split_archive_path(path)) {
            return ZipArchive::open(inside->archive).read(inside->member);
        }
    }
    std::ifstream in(path, std::ios::binary);
    check(in.good(), "{}: cannot open", path.string());
    std::ostringstream text;
    text << in.rdbuf();
    check(!in.bad(), "{}: read failed", path.string());
    return text.str();
}

std::vector<TextLine> read_lines(const fs::path& path) {
    const std::string text = read_file_text(path);
    std::vector<TextLine> lines;
    size_t start = 0, number = 1;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) lines.push_back({number, std::move(line)});
        start = end + 1;
        ++number;
    }
    return lines;
}

std::vector<JsonLine> read_jsonl(const fs::path& path) {
    std::vector<JsonLine> rows;
    // Hugging Face serves the same rows as Parquet: row i stands where line i would.
    if (path.extension() == ".parquet") {
        for (const fs::path& shard : parquet_split_shards(path)) {
            size_t row_in_shard = 0;
            for (nlohmann::json& row : parquet::read_parquet_rows(shard)) {
                std::string where = shard.string() + " row " + std::to_string(++row_in_shard);
                check(row.is_object(), "{}: expected a row of named fields", where);
                rows.push_back({rows.size() + 1, std::move(where), std::move(row)});
            }
        }
        check(!rows.empty(), "{}: no documents in the file", path.string());
        return rows;
    }
    for (TextLine& line : read_lines(path)) {
        if (line.text.find_first_not_of(" \t") == std::string::npos) continue;
        nlohmann::json value;
        try {
            value = nlohmann::json::parse(line.text);
        } catch (const nlohmann::json::parse_error& e) {
            fail("{}: not a JSON line (cut short?): {}", file_line(path, line.line), e.what());
        }
        check(value.is_object(), "{}: expected a JSON object, got {}", file_line(path, line.line),
              value.type_name());
        rows.push_back({line.line, file_line(path, line.line), std::move(value)});
    }
    check(!rows.empty(), "{}: no documents in the file", path.string());
    return rows;
}

const nlohmann::json& json_field(const nlohmann::json& object, std::string_view field,
                                 const std::string& where) {
    const nlohmann::json* at = &object;
    size_t start = 0;
    while (true) {
        const size_t dot = field.find('.', start);
        const std::string key(
            field.substr(start, dot == std::string_view::npos ? field.npos : dot - start));
        check(at->is_object() && at->contains(key), "{}: field '{}' is missing", where, field);
        at = &(*at)[key];
        if (dot == std::string_view::npos) return *at;
        start = dot + 1;
    }
}

std::string json_string(const nlohmann::json& object, std::string_view field,
                        const std::string& where) {
    const nlohmann::json& value = json_field(object, field, where);
    check(value.is_string(), "{}: field '{}' should be a string, got {}", where, field,
          value.type_name());
    return value.get<std::string>();
}

std::vector<std::string> json_strings(const nlohmann::json& object, std::string_view field,
                                      const std::string& where) {
    const nlohmann::json& value = json_field(object, field, where);
    check(value.is_array(), "{}: field '{}' should be a list of strings, got {}", where, field,
          value.type_name());
    std::vector<std::string> out;
    for (const auto& v : value) {
        check(v.is_string(), "{}: field '{}' should be a list of strings, holds {}", where, field,
              v.type_name());
        out.push_back(v.get<std::string>());
    }
    return out;
}

}  // namespace greenmoe::tasks

// Data folders and strict line-numbered readers for the benchmark tasks (see task_files.h).
#include "greenmoe/eval/tasks/task_files.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include "greenmoe/core/error.h"
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

}  // namespace

fs::path find_task_file(const std::string& task, const std::vector<std::string>& names,
                        const std::vector<std::string>& subfolders, const std::string& url,
                        const TaskOptions& options) {
    std::string folders;
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
    }
    std::string wanted;
    for (const std::string& name : names) {
        if (!wanted.empty()) wanted += " or ";
        wanted += name;
    }
    if (folders.empty()) folders = "\n  (none: no --data-dir, GREENMOE_DATA or cache folder)";
    fail(
        "{}: {} not found; looked in:{}\nDownload the original release from {} and pass its "
        "folder with --data-dir or GREENMOE_DATA",
        task, wanted, folders, url);
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
        for (nlohmann::json& row : parquet::read_parquet_rows(path)) {
            rows.push_back({rows.size() + 1, std::move(row)});
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
        rows.push_back({line.line, std::move(value)});
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

// Finding or fetching the HellaSwag validation file (see hellaswag_files.h).
#include "greenmoe/eval/hellaswag_files.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "greenmoe/core/error.h"
#include "greenmoe/eval/hellaswag_data.h"
#include "greenmoe/io/url_fetch.h"

namespace greenmoe {

namespace fs = std::filesystem;

namespace {

constexpr const char* kNames[] = {"hellaswag_val.jsonl", "hellaswag_val_full.txt.bz2",
                                  "hellaswag_val_full.txt"};

// The Hugging Face hub's copy (Rowan/hellaswag, the validation split in one Parquet shard), in
// the repository's layout and in the conversion branch's.
constexpr const char* kHubPaths[] = {
    "Rowan/hellaswag/data/validation-00000-of-00001.parquet",
    "hellaswag/data/validation-00000-of-00001.parquet",
    "Rowan/hellaswag/default/validation/0000.parquet",
    "hellaswag/default/validation/0000.parquet",
};

// The first known file inside folder (or its hellaswag/ subfolder, or the hub's folders);
// empty if none.
fs::path find_in_folder(const fs::path& folder, std::string& tried) {
    for (const fs::path& dir : {folder, folder / "hellaswag"}) {
        for (const char* name : kNames) {
            const fs::path p = dir / name;
            if (fs::is_regular_file(p)) return p;
            tried += "\n  " + p.string();
        }
    }
    for (const char* relative : kHubPaths) {
        const fs::path p = folder / relative;
        if (fs::is_regular_file(p)) return p;
        tried += "\n  " + p.string();
    }
    return {};
}

}  // namespace

fs::path find_or_fetch_hellaswag(const fs::path& given, const DataLocations& where) {
    std::string tried;
    if (!given.empty()) {
        if (fs::is_regular_file(given)) return given;
        check(fs::is_directory(given),
              "--data {}: no such file or folder (expected a HellaSwag .jsonl, .txt, "
              ".txt.bz2 or .parquet, or a folder holding one)",
              given.string());
        fs::path found = find_in_folder(given, tried);
        check(!found.empty(), "--data {}: no HellaSwag file in this folder; looked for:{}",
              given.string(), tried);
        return found;
    }
    if (!where.data_dir.empty()) {
        fs::path found = find_in_folder(where.data_dir, tried);
        if (!found.empty()) return found;
    }
    const fs::path cached = where.cache_dir / "data" / "hellaswag_val.jsonl";
    if (fs::is_regular_file(cached)) return cached;
    tried += "\n  " + cached.string();

    fs::create_directories(cached.parent_path());
    const fs::path partial = cached.string() + ".part." + std::to_string(getpid());
    std::fprintf(stderr, "downloading HellaSwag from %s\n", kHellaSwagUrl);
    std::error_code ec;
    if (!fetch_url(kHellaSwagUrl, partial, 300) || !fs::is_regular_file(partial)) {
        fs::remove(partial, ec);
        fail(
            "HellaSwag not found in:{}\nand the download from {} failed (offline?); pass "
            "--data FILE, or --data-dir DIR / GREENMOE_DATA naming a folder with "
            "hellaswag_val.jsonl, hellaswag_val_full.txt.bz2 or the hub's Rowan/hellaswag",
            tried, kHellaSwagUrl);
    }
    // No published checksum: keep the download only if it is the whole, well-formed split.
    size_t items = 0;
    try {
        items = read_hellaswag_jsonl(partial).size();
    } catch (const Error& e) {
        fs::remove(partial, ec);
        fail("{}: the downloaded file is not valid HellaSwag jsonl: {}", kHellaSwagUrl, e.what());
    }
    if (items != kHellaSwagValItems) {
        fs::remove(partial, ec);
        fail("{}: the download has {} items, expected {}", kHellaSwagUrl, items,
             kHellaSwagValItems);
    }
    fs::rename(partial, cached);
    return cached;
}

}  // namespace greenmoe

// Named datasets (see datasets.h).
#include "greenmoe/train/datasets.h"

#include <unistd.h>

#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/core/sha256.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/url_fetch.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/prepare.h"
#include "greenmoe/text/tokenizer_files.h"

namespace greenmoe {

namespace fs = std::filesystem;

namespace {

struct KnownDataset {
    const char* name;
    const char* file_name;
    std::vector<const char*> relative_paths;  // where a data folder may hold it
    const char* url;
    const char* sha256;
    size_t val_tokens;
};

const std::vector<KnownDataset>& known_datasets() {
    static const std::vector<KnownDataset> kDatasets = {
        {"tinyshakespeare",
         "tinyshakespeare.txt",
         {"tinyshakespeare.txt", "text/tinyshakespeare.txt", "tinyshakespeare/input.txt"},
         "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/"
         "input.txt",
         "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
         32768},
    };
    return kDatasets;
}

const KnownDataset& find_dataset(const std::string& name) {
    std::string names;
    for (const auto& d : known_datasets()) {
        if (name == d.name) return d;
        names += std::string(names.empty() ? "" : ", ") + d.name;
    }
    fail("data.dataset: unknown dataset '{}' (known: {}; or give data.train=<shard pattern>)", name,
         names);
}

}  // namespace

fs::path find_or_fetch_raw_dataset(const std::string& name, const DataLocations& where) {
    const KnownDataset& d = find_dataset(name);
    std::string tried;
    if (!where.data_dir.empty()) {
        for (const char* rel : d.relative_paths) {
            const fs::path p = where.data_dir / rel;
            if (fs::is_regular_file(p)) return p;
            tried += "\n  " + p.string();
        }
    }
    const fs::path cached = where.cache_dir / "data" / d.file_name;
    if (fs::is_regular_file(cached) && sha256_file(cached) == d.sha256) return cached;
    tried += "\n  " + cached.string();

    fs::create_directories(cached.parent_path());
    const fs::path partial = cached.string() + ".part." + std::to_string(getpid());
    std::fprintf(stderr, "downloading %s from %s\n", d.name, d.url);
    if (!fetch_url(d.url, partial, 120) || !fs::is_regular_file(partial)) {
        std::error_code ec;
        fs::remove(partial, ec);
        fail(
            "dataset '{}' not found in:{}\nand the download from {} failed (offline?); pass "
            "--data-dir DIR or set GREENMOE_DATA to a folder holding {}",
            name, tried, d.url, d.file_name);
    }
    const std::string digest = sha256_file(partial);
    if (digest != d.sha256) {
        fs::remove(partial);
        fail("{}: downloaded file has SHA-256 {}, expected {}", d.url, digest, d.sha256);
    }
    fs::rename(partial, cached);
    return cached;
}

ShardPatterns prepare_named_dataset(const std::string& name, const DataLocations& where) {
    const KnownDataset& d = find_dataset(name);
    const fs::path out_dir = where.cache_dir / "data" / d.name;
    const fs::path stamp = out_dir / "prepare.json";
    ShardPatterns patterns{(out_dir / (std::string(d.name) + "_train_*.bin")).string(),
                           (out_dir / (std::string(d.name) + "_val_*.bin")).string()};
    // prepare.json is written last, atomically: its presence means the shards are whole.
    if (fs::is_regular_file(stamp)) {
        const auto j = nlohmann::json::parse(read_file(stamp), nullptr, false);
        if (!j.is_discarded() && j.value("source_sha256", "") == d.sha256) return patterns;
    }
    const fs::path raw = find_or_fetch_raw_dataset(name, where);
    const std::string digest = sha256_file(raw);
    check(digest == d.sha256, "{}: SHA-256 {} does not match {}'s published {}", raw.string(),
          digest, d.name, d.sha256);
    const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::load(
        where.tokenizer_dir.empty() ? find_tokenizer_dir("") : where.tokenizer_dir);
    PrepareOptions options;
    options.inputs = {raw};
    options.out_dir = out_dir;
    options.name = d.name;
    options.val_tokens = d.val_tokens;
    prepare_shards(options, tokenizer);
    // Record the source checksum beside the counts prepare wrote.
    auto j = nlohmann::json::parse(read_file(stamp), nullptr, false);
    if (j.is_discarded() || !j.is_object()) j = nlohmann::json::object();
    j["source_sha256"] = d.sha256;
    write_file_atomic(stamp, j.dump(2) + "\n");
    return patterns;
}

}  // namespace greenmoe

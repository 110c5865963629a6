// Hub data set downloads with checksums (see hub_download.h).
#include "greenmoe/eval/tasks/hub_download.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/core/sha256.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/url_fetch.h"

namespace greenmoe::tasks {

namespace fs = std::filesystem;

namespace {

constexpr int kListSeconds = 60;
constexpr int kFileSeconds = 600;

// One file the tree API lists, with the checksum the hub publishes for it.
struct HubFile {
    std::string path;  // inside the repository, "ARC-Easy/test-00000-of-00001.parquet"
    std::string sha256;
    uintmax_t size = 0;
};

bool is_sha256(const std::string& s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

bool is_split_shard(const std::string& name, const std::string& split, bool conversion) {
    if (!name.ends_with(".parquet")) return false;
    if (conversion) return true;  // everything in <config>/<split>/
    return name == split + ".parquet" || name.starts_with(split + "-");
}

// The split's files in one folder of one revision; empty when the folder is not there.
std::vector<HubFile> list_split(const std::string& task, const std::string& endpoint,
                                const std::string& repo, const std::string& revision,
                                const std::string& folder, const std::string& split,
                                bool conversion, const fs::path& scratch) {
    const std::string url = endpoint + "/api/datasets/" + repo + "/tree/" + revision + "/" + folder;
    if (!fetch_url(url, scratch, kListSeconds)) return {};
    nlohmann::json listing;
    try {
        listing = nlohmann::json::parse(read_file(scratch));
    } catch (const nlohmann::json::exception& e) {
        fail("{}: {} did not answer with a JSON file list: {}", task, url, e.what());
    }
    check(listing.is_array(), "{}: {} did not answer with a JSON file list", task, url);
    std::vector<HubFile> files;
    for (const auto& entry : listing) {
        if (!entry.is_object() || entry.value("type", "") != "file") continue;
        const std::string path = entry.value("path", "");
        if (!is_split_shard(fs::path(path).filename().string(), split, conversion)) continue;
        // Parquet files are stored with Git LFS, whose object id is the file's SHA-256.
        const auto lfs = entry.find("lfs");
        const bool has_sum = lfs != entry.end() && lfs->is_object() && lfs->contains("oid") &&
                             (*lfs)["oid"].is_string() &&
                             is_sha256((*lfs)["oid"].get<std::string>()) && lfs->contains("size") &&
                             (*lfs)["size"].is_number_unsigned();
        check(has_sum, "{}: {} lists {} without a published SHA-256 (lfs.oid and lfs.size)", task,
              url, path);
        files.push_back({path, (*lfs)["oid"].get<std::string>(), (*lfs)["size"].get<uintmax_t>()});
    }
    std::sort(files.begin(), files.end(),
              [](const HubFile& a, const HubFile& b) { return a.path < b.path; });
    return files;
}

}  // namespace

std::string hub_endpoint() {
    const char* env = std::getenv("HF_ENDPOINT");
    std::string endpoint = env && *env ? env : "https://huggingface.co";
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    return endpoint;
}

bool hub_downloads_allowed() {
    const char* env = std::getenv("HF_HUB_OFFLINE");
    if (env == nullptr) return true;
    std::string v = env;
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    return !(v == "1" || v == "true" || v == "yes" || v == "on");
}

fs::path download_hub_split(const std::string& task, const HubSplit& hub,
                            const fs::path& data_dir) {
    const std::string endpoint = hub_endpoint();
    const std::string& repo = hub.repos.front();
    fs::create_directories(data_dir);
    const std::string tag = ".part." + std::to_string(getpid());
    const fs::path scratch = data_dir / ("hub-listing" + tag);
    struct Place {
        std::string revision, folder;
        bool conversion;
    };
    std::vector<Place> places = {{"main", hub.config, false}};
    if (hub.config == "default") places.push_back({"main", "data", false});
    // The conversion branch's name, quoted as one path segment as huggingface_hub sends it.
    places.push_back({"refs%2Fconvert%2Fparquet", hub.config + "/" + hub.split, true});

    std::vector<HubFile> files;
    std::string revision;
    for (const Place& p : places) {
        files = list_split(task, endpoint, repo, p.revision, p.folder, hub.split, p.conversion,
                           scratch);
        if (!files.empty()) {
            revision = p.revision;
            break;
        }
    }
    std::error_code ec;
    fs::remove(scratch, ec);
    check(!files.empty(),
          "{}: the hub data set {} has no Parquet files for configuration {} split {} at {} "
          "(offline? set HF_HUB_OFFLINE=1 to stop trying)",
          task, repo, hub.config, hub.split, endpoint);

    std::vector<std::pair<fs::path, fs::path>> moves;  // checked temporary → final
    auto clean_up = [&] {
        for (const auto& [part, final_path] : moves) fs::remove(part, ec);
    };
    for (const HubFile& f : files) {
        const std::string url =
            endpoint + "/datasets/" + repo + "/resolve/" + revision + "/" + f.path;
        const fs::path final_path = data_dir / repo / f.path;
        fs::create_directories(final_path.parent_path());
        const fs::path part = final_path.string() + tag;
        moves.emplace_back(part, final_path);
        std::fprintf(stderr, "downloading %s\n", url.c_str());
        if (!fetch_url(url, part, kFileSeconds)) {
            clean_up();
            fail("{}: the download of {} failed", task, url);
        }
        const uintmax_t size = fs::file_size(part);
        const std::string digest = sha256_file(part);
        if (size != f.size || digest != f.sha256) {
            clean_up();
            fail("{}: {} has {} bytes and SHA-256 {}; the hub publishes {} bytes and {}", task, url,
                 size, digest, f.size, f.sha256);
        }
    }
    // The first shard last: find_task_file looks for it, so a split is found only whole.
    for (size_t i = moves.size(); i-- > 0;) fs::rename(moves[i].first, moves[i].second);
    return moves.front().second;
}

}  // namespace greenmoe::tasks

// Benchmark-task data fetched from the Hugging Face hub into the cache when no data folder has
// it: listed through the hub's tree API, each file checked against its published SHA-256. The
// hub here is a folder served through file:// ($HF_ENDPOINT), laid out as the hub's URLs are.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "greenmoe/core/sha256.h"
#include "greenmoe/eval/tasks/tasks.h"
#include "greenmoe/io/atomic_file.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using greenmoe::testing::error_message;
using greenmoe::testing::TempDir;
using namespace greenmoe::tasks;

fs::path hub_fixtures() {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "lm-eval-hub";
}

// Sets an environment variable (or unsets it, given nullopt) for the test's life.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value) {
            setenv(name, value->c_str(), 1);
        } else {
            unsetenv(name);
        }
    }
    ~ScopedEnv() {
        if (old_) {
            setenv(name_, old_->c_str(), 1);
        } else {
            unsetenv(name_);
        }
    }

  private:
    const char* name_;
    std::optional<std::string> old_;
};

// A hub on disk: <root>/api/datasets/<repo>/tree/<revision>/<folder> holds the listing,
// <root>/datasets/<repo>/resolve/<revision>/<path> the files (curl decodes the conversion
// branch's %2F in a file:// URL, so its revision is the folders refs/convert/parquet).
struct FakeHub {
    TempDir root;
    // Serves `files` (paths in the repository → local file) under one listed folder.
    void serve(const std::string& repo, const std::string& revision, const std::string& folder,
               const std::vector<std::pair<std::string, fs::path>>& files,
               const std::string& wrong_sum_for = "") {
        nlohmann::json listing = nlohmann::json::array();
        listing.push_back({{"type", "directory"}, {"path", folder + "/sub"}});
        listing.push_back({{"type", "file"}, {"path", folder + "/README.md"}, {"size", 10}});
        for (const auto& [path, local] : files) {
            const fs::path dest = root / "datasets" / repo / "resolve" / revision / path;
            fs::create_directories(dest.parent_path());
            fs::copy_file(local, dest);
            std::string sum = greenmoe::sha256_file(local);
            if (path == wrong_sum_for) sum[0] = sum[0] == '0' ? '1' : '0';
            const auto size = fs::file_size(local);
            listing.push_back({{"type", "file"},
                               {"path", path},
                               {"size", size},
                               {"lfs", {{"oid", sum}, {"size", size}, {"pointerSize", 134}}}});
        }
        const fs::path list = root / "api" / "datasets" / repo / "tree" / revision / folder;
        fs::create_directories(list.parent_path());
        greenmoe::write_file_atomic(list, listing.dump());
    }
    std::string endpoint() const { return "file://" + root.path().string(); }
};

TaskOptions cache_only(const fs::path& cache, int shots = 0) {
    TaskOptions o;
    o.cache_dir = cache;
    o.num_fewshot = shots;
    return o;
}

TEST(TaskDownload, FetchesCheckedShardsIntoTheCacheAndReadsThemThere) {
    FakeHub hub;
    const fs::path wino = hub_fixtures() / "allenai" / "winogrande" / "winogrande_xl";
    std::vector<std::pair<std::string, fs::path>> files;
    for (const std::string name :
         {"validation-00000-of-00001.parquet", "train-00000-of-00002.parquet",
          "train-00001-of-00002.parquet"}) {
        files.emplace_back("winogrande_xl/" + name, wino / name);
    }
    hub.serve("allenai/winogrande", "main", "winogrande_xl", files);
    TempDir cache;
    ScopedEnv endpoint("HF_ENDPOINT", hub.endpoint());
    ScopedEnv online("HF_HUB_OFFLINE", std::nullopt);
    ScopedEnv no_data("GREENMOE_DATA", std::nullopt);

    TaskOptions from_fixture;
    from_fixture.data_dir = hub_fixtures();
    from_fixture.num_fewshot = 3;
    const auto want = build_task("winogrande", from_fixture);
    const auto got = build_task("winogrande", cache_only(cache.path(), 3));
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].candidates.size(), want[i].candidates.size());
        for (size_t c = 0; c < got[i].candidates.size(); ++c) {
            EXPECT_EQ(got[i].candidates[c].context, want[i].candidates[c].context);
            EXPECT_EQ(got[i].candidates[c].continuation, want[i].candidates[c].continuation);
        }
    }
    const fs::path cached = cache / "data" / "allenai" / "winogrande" / "winogrande_xl";
    for (const auto& [path, local] : files) {
        const fs::path name = fs::path(path).filename();
        EXPECT_EQ(greenmoe::sha256_file(cached / name), greenmoe::sha256_file(local)) << name;
    }
    EXPECT_NE(got[0].doc_id.find(cached.string()), std::string::npos) << got[0].doc_id;
    // No temporary left behind, and the second time the hub is not asked.
    for (const auto& entry : fs::recursive_directory_iterator(cache.path())) {
        EXPECT_EQ(entry.path().string().find(".part."), std::string::npos) << entry.path();
    }
    fs::remove_all(hub.root / "datasets");
    EXPECT_EQ(build_task("winogrande", cache_only(cache.path(), 3)).size(), want.size());
}

TEST(TaskDownload, ConversionBranchWhenTheRepositoryHasNoParquet) {
    FakeHub hub;
    const fs::path boolq = hub_fixtures() / "super_glue" / "boolq" / "validation" / "0000.parquet";
    hub.serve("aps/super_glue", "refs/convert/parquet", "boolq/validation",
              {{"boolq/validation/0000.parquet", boolq}});
    TempDir cache;
    ScopedEnv endpoint("HF_ENDPOINT", hub.endpoint());
    ScopedEnv online("HF_HUB_OFFLINE", std::nullopt);
    ScopedEnv no_data("GREENMOE_DATA", std::nullopt);
    const auto got = build_task("boolq", cache_only(cache.path()));
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(
        got[0].doc_id,
        (cache / "data" / "aps" / "super_glue" / "boolq" / "validation" / "0000.parquet").string() +
            " row 1");
}

TEST(TaskDownload, ChecksumMismatchKeepsNothing) {
    FakeHub hub;
    const fs::path rte = hub_fixtures() / "glue" / "rte";
    hub.serve(
        "nyu-mll/glue", "main", "rte",
        {{"rte/validation-00000-of-00001.parquet", rte / "validation-00000-of-00001.parquet"}},
        "rte/validation-00000-of-00001.parquet");
    TempDir cache;
    ScopedEnv endpoint("HF_ENDPOINT", hub.endpoint());
    ScopedEnv online("HF_HUB_OFFLINE", std::nullopt);
    ScopedEnv no_data("GREENMOE_DATA", std::nullopt);
    const std::string msg = error_message([&] { build_task("rte", cache_only(cache.path())); });
    EXPECT_NE(msg.find("rte/validation-00000-of-00001.parquet has"), std::string::npos) << msg;
    EXPECT_NE(msg.find("the hub publishes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("dev.tsv not found"), std::string::npos) << msg;
    for (const auto& entry : fs::recursive_directory_iterator(cache.path())) {
        EXPECT_FALSE(entry.is_regular_file()) << entry.path();
    }
}

TEST(TaskDownload, OfflineOrUnreachableHubIsOneErrorNamingBoth) {
    TempDir cache, nowhere;
    ScopedEnv no_data("GREENMOE_DATA", std::nullopt);
    {
        ScopedEnv endpoint("HF_ENDPOINT", "file://" + nowhere.path().string());
        ScopedEnv online("HF_HUB_OFFLINE", std::nullopt);
        const std::string msg =
            error_message([&] { build_task("openbookqa", cache_only(cache.path())); });
        EXPECT_NE(msg.find("test.jsonl not found"), std::string::npos) << msg;
        EXPECT_NE(msg.find("allenai/openbookqa has no Parquet files for configuration main "
                           "split test"),
                  std::string::npos)
            << msg;
    }
    ScopedEnv offline("HF_HUB_OFFLINE", "1");
    const std::string msg =
        error_message([&] { build_task("openbookqa", cache_only(cache.path())); });
    EXPECT_NE(msg.find("test.jsonl not found"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("has no Parquet files"), std::string::npos) << msg;
}

TEST(TaskDownload, ListingWithoutChecksumsIsRefused) {
    FakeHub hub;
    hub.serve("EleutherAI/lambada_openai", "main", "default", {});
    // A listing whose Parquet entry has no lfs object (no published checksum).
    const fs::path list = hub.root / "api/datasets/EleutherAI/lambada_openai/tree/main/default";
    greenmoe::write_file_atomic(
        list, R"([{"type": "file", "path": "default/test-00000-of-00001.parquet", "size": 5}])");
    TempDir cache;
    ScopedEnv endpoint("HF_ENDPOINT", hub.endpoint());
    ScopedEnv online("HF_HUB_OFFLINE", std::nullopt);
    ScopedEnv no_data("GREENMOE_DATA", std::nullopt);
    const std::string msg =
        error_message([&] { build_task("lambada_openai", cache_only(cache.path())); });
    EXPECT_NE(msg.find("without a published SHA-256"), std::string::npos) << msg;
}

}  // namespace

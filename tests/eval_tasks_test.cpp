// Benchmark tasks: the prompts greenmoe builds equal the ones lm-evaluation-harness builds
// (tests/fixtures/lm-eval/<task>/expected.json, made by tools/fixtures/make_lm_eval_fixtures.py),
// and bad data files, task names and few-shot counts fail with messages naming them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "greenmoe/core/error.h"
#include "greenmoe/eval/hellaswag_data.h"
#include "greenmoe/eval/tasks/tasks.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using greenmoe::testing::error_message;
using greenmoe::testing::TempDir;
using namespace greenmoe::tasks;

fs::path fixtures() {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "lm-eval";
}

nlohmann::json expected_for(const std::string& task) {
    std::ifstream in(fixtures() / task / "expected.json");
    EXPECT_TRUE(in.good()) << task;
    return nlohmann::json::parse(in);
}

// The same documents as the Hugging Face hub serves them (Parquet, the hub's folder layouts),
// made by tools/fixtures/make_task_parquet_fixtures.py.
fs::path hub_fixtures() {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "lm-eval-hub";
}

TaskOptions fixture_options(int shots, uint64_t seed, int64_t limit = 0,
                            const fs::path& data_dir = fixtures()) {
    TaskOptions o;
    o.num_fewshot = shots;
    o.seed = seed;
    o.limit = limit;
    o.data_dir = data_dir;
    return o;
}

// Every run (shots, seed) of the harness's dump, instance by instance, string by string, with
// the documents read from `data_dir`.
void expect_matches_harness(const std::string& task, const fs::path& data_dir = fixtures()) {
    const nlohmann::json expected = expected_for(task);
    ASSERT_FALSE(expected["runs"].empty());
    for (const auto& run : expected["runs"]) {
        const int shots = run["num_fewshot"].get<int>();
        const uint64_t seed = run["seed"].get<uint64_t>();
        const int64_t limit = run.value("limit", int64_t{0});  // the harness's --limit
        SCOPED_TRACE(task + " num_fewshot=" + std::to_string(shots) +
                     " seed=" + std::to_string(seed));
        std::vector<Instance> got;
        if (task == "mmlu") {
            std::vector<std::string> subjects;
            for (const auto& inst : run["instances"]) {
                const std::string g = inst["group"].get<std::string>();
                if (subjects.empty() || subjects.back() != g) subjects.push_back(g);
            }
            for (const std::string& s : subjects) {
                auto part = build_task("mmlu_" + s, fixture_options(shots, seed, limit, data_dir));
                got.insert(got.end(), part.begin(), part.end());
            }
        } else {
            got = build_task(task, fixture_options(shots, seed, limit, data_dir));
        }
        const auto& want = run["instances"];
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i) {
            SCOPED_TRACE("instance " + std::to_string(i) + " (" + got[i].doc_id + ")");
            const auto& w = want[i];
            const auto continuations = w["continuations"].get<std::vector<std::string>>();
            ASSERT_EQ(got[i].candidates.size(), continuations.size());
            for (size_t c = 0; c < continuations.size(); ++c) {
                const std::string context = w.contains("context")
                                                ? w["context"].get<std::string>()
                                                : w["contexts"][c].get<std::string>();
                EXPECT_EQ(got[i].candidates[c].context, context) << "candidate " << c;
                EXPECT_EQ(got[i].candidates[c].continuation, continuations[c]) << "candidate " << c;
            }
            if (w.contains("choices")) {
                EXPECT_EQ(got[i].choices, w["choices"].get<std::vector<std::string>>());
                EXPECT_EQ(got[i].gold, w["gold"].get<int>());
            }
            if (w.contains("group")) {
                EXPECT_EQ(got[i].group, w["group"].get<std::string>());
            }
        }
    }
}

TEST(TaskHarness, ArcEasy) {
    expect_matches_harness("arc_easy");
}
TEST(TaskHarness, ArcChallenge) {
    expect_matches_harness("arc_challenge");
}
TEST(TaskHarness, BoolQ) {
    expect_matches_harness("boolq");
}
TEST(TaskHarness, WinoGrande) {
    expect_matches_harness("winogrande");
}
TEST(TaskHarness, HellaSwag) {
    expect_matches_harness("hellaswag");
}
TEST(TaskHarness, Piqa) {
    expect_matches_harness("piqa");
}
TEST(TaskHarness, OpenBookQA) {
    expect_matches_harness("openbookqa");
}
TEST(TaskHarness, Rte) {
    expect_matches_harness("rte");
}
TEST(TaskHarness, Mmlu) {
    expect_matches_harness("mmlu");
}
TEST(TaskHarness, LambadaOpenAI) {
    expect_matches_harness("lambada_openai");
}

// The harness reads the hub's copies: from them greenmoe builds the very requests it dumped.
TEST(TaskHub, EveryTaskFromTheHubParquetAsTheHarness) {
    for (const std::string& task : task_names()) {
        SCOPED_TRACE(task);
        expect_matches_harness(task, hub_fixtures());
        const std::string one = task == "mmlu" ? "mmlu_college_physics" : task;
        const auto first = build_task(one, fixture_options(0, 1234, 1, hub_fixtures()));
        ASSERT_EQ(first.size(), 1u);
        EXPECT_NE(first[0].doc_id.find(".parquet row 1"), std::string::npos) << first[0].doc_id;
    }
}

TEST(TaskHub, DocumentsNameTheirShardAndRow) {
    const auto rte = build_task("rte", fixture_options(0, 1234, 2, hub_fixtures()));
    ASSERT_EQ(rte.size(), 2u);
    EXPECT_EQ(rte[1].doc_id,
              (hub_fixtures() / "glue" / "rte" / "validation-00000-of-00001.parquet").string() +
                  " row 2");
    EXPECT_EQ(rte[1].doc["idx"], 1);
    // A split in shards reads them all, in order: the few-shot pool of ARC-Easy is in three.
    const auto arc = build_task("arc_easy", fixture_options(0, 1234, 0, hub_fixtures()));
    const auto release = build_task("arc_easy", fixture_options(0, 1234, 0, fixtures()));
    ASSERT_EQ(arc.size(), release.size());
    for (size_t i = 0; i < arc.size(); ++i) EXPECT_EQ(arc[i].doc, release[i].doc);
}

TEST(TaskHub, MissingShardIsNamed) {
    TempDir dir;
    fs::copy(hub_fixtures() / "allenai", dir / "allenai", fs::copy_options::recursive);
    const fs::path folder = dir / "allenai" / "winogrande" / "winogrande_xl";
    fs::remove(folder / "train-00001-of-00002.parquet");
    const std::string msg = greenmoe::testing::error_message(
        [&] { build_task("winogrande", fixture_options(3, 1234, 0, dir.path())); });
    EXPECT_NE(msg.find("shard 2 of 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find((folder / "train-00001-of-00002.parquet").string()), std::string::npos)
        << msg;
}

TEST(TaskHub, BadRowNamesShardRowAndField) {
    const fs::path bad = fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "lm-eval-hub-bad";
    const std::string msg = greenmoe::testing::error_message(
        [&] { build_task("mmlu_abstract_algebra", fixture_options(0, 1234, 0, bad)); });
    EXPECT_NE(msg.find("test-00000-of-00001.parquet row 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'answer'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("got 4"), std::string::npos) << msg;
}

// A folder named first wins, whichever copy it holds.
TEST(TaskHub, EarlierFolderWinsOverTheOtherCopy) {
    TaskOptions o = fixture_options(0, 1234, 1, hub_fixtures());
    o.cache_dir = fixtures();
    EXPECT_NE(build_task("piqa", o)[0].doc_id.find(".parquet row 1"), std::string::npos);
    o.data_dir = fixtures();
    o.cache_dir = hub_fixtures();
    EXPECT_NE(build_task("piqa", o)[0].doc_id.find("valid.jsonl:1"), std::string::npos);
}

TEST(TaskHarness, FifteenShotRunsAreChecked) {
    for (const std::string task : {"arc_easy", "winogrande", "hellaswag"}) {
        const nlohmann::json expected = expected_for(task);
        bool found = false;
        for (const auto& run : expected["runs"]) found |= run["num_fewshot"].get<int>() == 15;
        EXPECT_TRUE(found) << task;
    }
}

TEST(TaskHarness, FixturesComeFromOneHarnessVersion) {
    for (const std::string& task : task_names()) {
        EXPECT_EQ(expected_for(task)["lm_eval_version"].get<std::string>().rfind("0.4.", 0), 0u)
            << task;
    }
}

TEST(TaskInfo, NamesSplitsAndMetrics) {
    EXPECT_EQ(task_names().size(), 10u);
    EXPECT_EQ(mmlu_subjects().size(), 57u);
    EXPECT_EQ(task_info("winogrande").eval_split, "validation");
    EXPECT_EQ(task_info("mmlu").fewshot_split, "dev");
    EXPECT_EQ(task_info("mmlu_anatomy").name, "mmlu");
    EXPECT_EQ(task_info("lambada_openai").kind, OutputKind::Loglikelihood);
    EXPECT_EQ(task_info("hellaswag").metrics, (std::vector<std::string>{"acc", "acc_norm"}));
}

TEST(TaskInfo, UnknownTaskNamesTheKnownOnes) {
    EXPECT_THROW(task_info("arc_medium"), greenmoe::UsageError);
    const std::string msg = error_message([] { build_task("mmlu_cooking", TaskOptions{}); });
    EXPECT_NE(msg.find("mmlu_cooking"), std::string::npos) << msg;
    EXPECT_NE(msg.find("arc_easy"), std::string::npos) << msg;
    EXPECT_NE(msg.find("lambada_openai"), std::string::npos) << msg;
}

TEST(TaskOptions, LimitTakesTheFirstDocuments) {
    TaskOptions o = fixture_options(0, 1234);
    o.limit = 2;
    const auto got = build_task("piqa", o);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_NE(got[1].doc_id.find("valid.jsonl:2"), std::string::npos) << got[1].doc_id;
}

TEST(TaskOptions, FewshotLargerThanTheSplitNamesBothNumbers) {
    // 22 training questions; ARC draws exactly num_fewshot of them.
    EXPECT_NO_THROW(build_task("arc_easy", fixture_options(22, 1234)));
    std::string msg = error_message([] { build_task("arc_easy", fixture_options(23, 1234)); });
    EXPECT_NE(msg.find("--num-fewshot 23"), std::string::npos) << msg;
    EXPECT_NE(msg.find("22 documents"), std::string::npos) << msg;
    EXPECT_NE(msg.find("ARC-Easy-Train.jsonl"), std::string::npos) << msg;
    // BoolQ draws num_fewshot + 1 (the harness leaves out the evaluated document).
    msg = error_message([] { build_task("boolq", fixture_options(22, 1234)); });
    EXPECT_NE(msg.find("--num-fewshot 22"), std::string::npos) << msg;
    EXPECT_NE(msg.find("num_fewshot + 1"), std::string::npos) << msg;
    // MMLU's dev split has 5 questions per subject.
    msg = error_message([] { build_task("mmlu_college_physics", fixture_options(6, 1234)); });
    EXPECT_NE(msg.find("--num-fewshot 6"), std::string::npos) << msg;
    EXPECT_NE(msg.find("5 documents"), std::string::npos) << msg;
}

TEST(TaskData, DataDirComesBeforeGreenmoeDataAndTheCache) {
    TempDir env_dir, cache_dir;
    fs::copy(fixtures() / "rte", env_dir / "rte", fs::copy_options::recursive);
    fs::create_directories(cache_dir / "data");
    fs::copy(fixtures() / "piqa", cache_dir / "data" / "piqa", fs::copy_options::recursive);
    const char* old = std::getenv("GREENMOE_DATA");
    const std::string saved = old ? old : "";
    setenv("GREENMOE_DATA", env_dir.path().c_str(), 1);
    TaskOptions o;
    o.data_dir = fixtures();
    o.cache_dir = cache_dir.path();
    EXPECT_NE(build_task("rte", o)[0].doc_id.find(fixtures().string()), std::string::npos);
    o.data_dir.clear();
    EXPECT_NE(build_task("rte", o)[0].doc_id.find(env_dir.path().string()), std::string::npos);
    EXPECT_NE(build_task("piqa", o)[0].doc_id.find((cache_dir / "data").string()),
              std::string::npos);
    if (old) {
        setenv("GREENMOE_DATA", saved.c_str(), 1);
    } else {
        unsetenv("GREENMOE_DATA");
    }
}

// All 57 subjects, in order, each with its header: a copy of one fixture subject under every
// subject's name.
TEST(TaskData, WholeMmluReadsEverySubject) {
    TempDir dir;
    for (const std::string split : {"test", "dev"}) {
        fs::create_directories(dir / "data" / split);
        for (const std::string& s : mmlu_subjects()) {
            fs::copy_file(
                fixtures() / "mmlu" / "data" / split / ("college_physics_" + split + ".csv"),
                dir / "data" / split / (s + "_" + split + ".csv"));
        }
    }
    TaskOptions o;
    o.data_dir = dir.path();
    o.num_fewshot = 2;
    o.limit = 1;
    const auto got = build_task("mmlu", o);
    ASSERT_EQ(got.size(), 57u);
    EXPECT_EQ(got[0].group, "abstract_algebra");
    EXPECT_EQ(got[56].group, "world_religions");
    EXPECT_EQ(got[24].candidates[0].context.rfind(
                  "The following are multiple choice questions (with answers) about high school "
                  "macroeconomics.\n\n",
                  0),
              0u);
}

// A copy of one task's fixture folder to damage.
struct DamagedCopy {
    TempDir dir;
    fs::path copy(const std::string& task) {
        fs::copy(fixtures() / task, dir / task, fs::copy_options::recursive);
        return dir / task;
    }
    TaskOptions options(int shots = 0) {
        TaskOptions o;
        o.num_fewshot = shots;
        o.data_dir = dir.path();
        return o;
    }
};

std::vector<std::string> lines_of(const fs::path& p) {
    std::ifstream in(p);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}

void write_lines(const fs::path& p, const std::vector<std::string>& lines,
                 bool final_newline = true) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    for (size_t i = 0; i < lines.size(); ++i) {
        out << lines[i];
        if (i + 1 < lines.size() || final_newline) out << '\n';
    }
}

TEST(TaskData, MissingFileNamesTaskFileFoldersAndUrl) {
    TempDir empty;
    TaskOptions o;
    o.data_dir = empty.path();
    const std::string msg = error_message([&] { build_task("winogrande", o); });
    EXPECT_NE(msg.find("winogrande: dev.jsonl not found"), std::string::npos) << msg;
    EXPECT_NE(msg.find((empty.path() / "winogrande_1.1").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("winogrande_1.1.zip"), std::string::npos) << msg;
    // The hub's copy is looked for too, and named with the command that fetches it.
    EXPECT_NE(msg.find("allenai/winogrande (winogrande_xl split validation"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find((empty.path() / "allenai" / "winogrande" / "winogrande_xl").string()),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("hf download allenai/winogrande --repo-type dataset"), std::string::npos)
        << msg;
}

TEST(TaskData, MalformedJsonLineNamesFileAndLine) {
    DamagedCopy d;
    const fs::path file = d.copy("arc_easy") / "ARC-Easy-Test.jsonl";
    auto lines = lines_of(file);
    lines[2] = "{\"id\": \"x\", \"question\": ";
    write_lines(file, lines);
    const std::string msg = error_message([&] { build_task("arc_easy", d.options()); });
    EXPECT_NE(msg.find(file.string() + ":3"), std::string::npos) << msg;
}

TEST(TaskData, TruncatedJsonlNamesItsLastLine) {
    DamagedCopy d;
    const fs::path file = d.copy("boolq") / "dev.jsonl";
    auto lines = lines_of(file);
    lines.back().resize(lines.back().size() / 2);
    write_lines(file, lines, false);
    const std::string msg = error_message([&] { build_task("boolq", d.options()); });
    EXPECT_NE(msg.find(file.string() + ":" + std::to_string(lines.size())), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("cut short"), std::string::npos) << msg;
}

TEST(TaskData, MissingOrWrongFieldNamesIt) {
    DamagedCopy d;
    const fs::path file = d.copy("arc_challenge") / "ARC-Challenge-Test.jsonl";
    auto lines = lines_of(file);
    auto j = nlohmann::json::parse(lines[1]);
    j["question"].erase("stem");
    lines[1] = j.dump();
    write_lines(file, lines);
    std::string msg = error_message([&] { build_task("arc_challenge", d.options()); });
    EXPECT_NE(msg.find(file.string() + ":2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("question.stem"), std::string::npos) << msg;

    const fs::path wino = d.copy("winogrande") / "dev.jsonl";
    lines = lines_of(wino);
    j = nlohmann::json::parse(lines[3]);
    j["answer"] = 2;
    lines[3] = j.dump();
    write_lines(wino, lines);
    msg = error_message([&] { build_task("winogrande", d.options()); });
    EXPECT_NE(msg.find(wino.string() + ":4"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'answer'"), std::string::npos) << msg;
}

TEST(TaskData, MalformedMmluCsvNamesRowAndField) {
    DamagedCopy d;
    const fs::path dir = d.copy("mmlu");
    const fs::path file = dir / "data" / "test" / "abstract_algebra_test.csv";
    // A quoted question spans two lines: row 3 starts on line 4.
    write_lines(file,
                {"What is 1+1?,1,2,3,4,B", "\"Two\nlines\",1,2,3,4,A", "What is 2+2?,1,2,3,E"});
    std::string msg = error_message([&] { build_task("mmlu_abstract_algebra", d.options()); });
    EXPECT_NE(msg.find(file.string() + ":4 (row 3)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("5 fields"), std::string::npos) << msg;
    write_lines(file, {"What is 1+1?,1,2,3,4,B", "What is 2+2?,1,2,3,4,E"});
    msg = error_message([&] { build_task("mmlu_abstract_algebra", d.options()); });
    EXPECT_NE(msg.find("'answer'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("row 2"), std::string::npos) << msg;
    write_lines(file, {"What is 1+1?,1,2,3,4,B", "\"Unclosed,1,2,3,4,A"});
    msg = error_message([&] { build_task("mmlu_abstract_algebra", d.options()); });
    EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
    // The whole of MMLU needs every subject: the first missing one is named.
    fs::copy_file(fixtures() / "mmlu" / "data" / "test" / "abstract_algebra_test.csv", file,
                  fs::copy_options::overwrite_existing);
    msg = error_message([&] { build_task("mmlu", d.options()); });
    EXPECT_NE(msg.find("anatomy_test.csv"), std::string::npos) << msg;
}

TEST(TaskData, TruncatedRteTsvAndPiqaLabels) {
    DamagedCopy d;
    const fs::path tsv = d.copy("rte") / "dev.tsv";
    auto lines = lines_of(tsv);
    lines.back() = lines.back().substr(0, lines.back().find('\t') + 3);
    write_lines(tsv, lines, false);
    std::string msg = error_message([&] { build_task("rte", d.options()); });
    EXPECT_NE(msg.find(tsv.string() + ":" + std::to_string(lines.size())), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("cut short"), std::string::npos) << msg;

    const fs::path labels = d.copy("piqa") / "valid-labels.lst";
    lines = lines_of(labels);
    lines.pop_back();
    write_lines(labels, lines);
    msg = error_message([&] { build_task("piqa", d.options()); });
    EXPECT_NE(msg.find("valid-labels.lst"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(lines.size()) + " labels"), std::string::npos) << msg;
}

// The real validation file (llama.cpp's text format, already cleaned): each item's context and
// endings as they are, the harness's " " between them.
TEST(TaskHellaSwag, ReadsTheRealTextFile) {
    TaskOptions o;
    o.data_dir = greenmoe::testing::shared_data();
    o.limit = 5;
    const auto got = build_task("hellaswag", o);
    const auto items = greenmoe::read_hellaswag(
        greenmoe::testing::shared_data() / "hellaswag" / "hellaswag_val_full.txt.bz2", 5);
    ASSERT_EQ(got.size(), 5u);
    for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].candidates.size(), 4u);
        EXPECT_EQ(got[i].gold, items[i].label);
        for (size_t c = 0; c < 4; ++c) {
            EXPECT_EQ(got[i].candidates[c].context, items[i].context);
            EXPECT_EQ(got[i].candidates[c].continuation, " " + items[i].endings[c]);
        }
    }
}

// The first items of the real validation file with few-shot examples from the fixture's
// train file, against the harness's requests for the same items (expected_real_val.json).
TEST(TaskHellaSwag, RealItemsFewShotAsTheHarness) {
    TempDir dir;
    fs::create_symlink(
        greenmoe::testing::shared_data() / "hellaswag" / "hellaswag_val_full.txt.bz2",
        dir / "hellaswag_val_full.txt.bz2");
    fs::create_symlink(fixtures() / "hellaswag" / "hellaswag_train.jsonl",
                       dir / "hellaswag_train.jsonl");
    std::ifstream in(fixtures() / "hellaswag" / "expected_real_val.json");
    const nlohmann::json expected = nlohmann::json::parse(in);
    for (const auto& run : expected["runs"]) {
        TaskOptions o;
        o.num_fewshot = run["num_fewshot"].get<int>();
        o.seed = run["seed"].get<uint64_t>();
        o.data_dir = dir.path();
        o.limit = static_cast<int64_t>(run["instances"].size());
        const auto got = build_task("hellaswag", o);
        ASSERT_EQ(got.size(), run["instances"].size());
        for (size_t i = 0; i < got.size(); ++i) {
            const auto& w = run["instances"][i];
            SCOPED_TRACE(std::to_string(o.num_fewshot) + "-shot seed " + std::to_string(o.seed) +
                         " item " + std::to_string(i));
            ASSERT_EQ(got[i].candidates.size(), w["continuations"].size());
            for (size_t c = 0; c < got[i].candidates.size(); ++c) {
                EXPECT_EQ(got[i].candidates[c].context, w["context"].get<std::string>());
                EXPECT_EQ(got[i].candidates[c].continuation,
                          w["continuations"][c].get<std::string>());
            }
            EXPECT_EQ(got[i].gold, w["gold"].get<int>());
        }
    }
}

}  // namespace

// HellaSwag scoring against an independent float64 implementation
// (tools/fixtures/make_hellaswag_reference.py) on items of both public formats, in both
// scoring styles; `greenmoe eval`; and, as a longer test, all 10,042 items with nano.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/eval/hellaswag.h"
#include "greenmoe/eval/hellaswag_data.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/train/train_config.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using testing::run_command;

fs::path fixture(const std::string& name) {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "hellaswag" / name;
}

fs::path shared_hellaswag() {
    return testing::shared_data() / "hellaswag" / "hellaswag_val_full.txt.bz2";
}

const nlohmann::json& expected() {
    static const nlohmann::json j = nlohmann::json::parse(read_file(fixture("expected.json")));
    return j;
}

const Gpt2Tokenizer& tokenizer() {
    static const Gpt2Tokenizer t = Gpt2Tokenizer::load(testing::tokenizer_dir());
    return t;
}

// Every number of every item, and the accuracies, as the reference has them.
void expect_matches_reference(const HellaSwagResult& r, const nlohmann::json& want,
                              const std::string& what) {
    const auto& scores = want.at("scores");
    ASSERT_EQ(r.items, static_cast<int64_t>(scores.size())) << what;
    for (size_t i = 0; i < scores.size(); ++i) {
        const auto& w = scores[i];
        const HellaSwagScore& s = r.scores[i];
        const std::string at = what + " item " + std::to_string(i);
        for (size_t j = 0; j < 4; ++j) {
            EXPECT_EQ(s.ending_tokens[j], w.at("ending_tokens")[j].get<int>()) << at;
            EXPECT_EQ(s.ending_chars[j], w.at("ending_chars")[j].get<int>()) << at;
            // float32 model vs float64 reference: sums of ~20 losses of ~5 nats.
            EXPECT_NEAR(s.sum_loss[j], w.at("sum_loss")[j].get<double>(), 2e-3) << at;
            EXPECT_NEAR(s.mean_loss[j], w.at("mean_loss")[j].get<double>(), 1e-4) << at;
            EXPECT_NEAR(s.loglik[j], w.at("loglik")[j].get<double>(), 2e-3) << at;
        }
        EXPECT_EQ(s.pred, w.at("pred").get<int>()) << at;
        EXPECT_EQ(s.pred_norm, w.at("pred_norm").get<int>()) << at;
        EXPECT_EQ(s.harness_pred, w.at("harness_pred").get<int>()) << at;
        EXPECT_EQ(s.harness_pred_norm, w.at("harness_pred_norm").get<int>()) << at;
        EXPECT_EQ(s.truncated, w.at("truncated").get<bool>()) << at;
    }
    EXPECT_DOUBLE_EQ(r.acc(), want.at("acc").get<double>()) << what;
    EXPECT_DOUBLE_EQ(r.acc_norm(), want.at("acc_norm").get<double>()) << what;
    EXPECT_DOUBLE_EQ(r.harness_acc(), want.at("harness_acc").get<double>()) << what;
    EXPECT_DOUBLE_EQ(r.harness_acc_norm(), want.at("harness_acc_norm").get<double>()) << what;
}

TEST(HellaSwagScoring, TextFormatMatchesTheIndependentReference) {
    const auto model = load_model(fixture("tiny_gpt2"), 1, 1);
    const auto items = read_hellaswag_text(shared_hellaswag(), 6);
    // Small calls so that contexts and endings are split across forwards.
    HellaSwagOptions options;
    options.items_per_batch = 4;
    options.max_batch_tokens = 50;
    expect_matches_reference(evaluate_hellaswag(*model, tokenizer(), items, options),
                             expected().at("text"), "text");
}

TEST(HellaSwagScoring, RawJsonlMatchesTheIndependentReferenceInBothStyles) {
    const auto model = load_model(fixture("tiny_gpt2"), 1, 1);
    const auto items = read_hellaswag_jsonl(fixture("sample.jsonl"));
    ASSERT_EQ(items.size(), 4u);
    EXPECT_NE(items[0].context, items[0].raw_context);  // the styles see different texts
    const HellaSwagResult r = evaluate_hellaswag(*model, tokenizer(), items);
    expect_matches_reference(r, expected().at("jsonl"), "jsonl");
    // The fixture's items make the styles disagree, so each is really computed.
    EXPECT_NE(r.acc_norm(), r.harness_acc_norm());
}

TEST(HellaSwagScoring, ScoresDoNotDependOnTheBatching) {
    const auto model = load_model(fixture("tiny_gpt2"), 1, 1);
    const auto items = read_hellaswag_text(shared_hellaswag(), 6);
    HellaSwagOptions one;
    one.items_per_batch = 1;
    HellaSwagOptions many;
    many.items_per_batch = 6;
    many.max_batch_tokens = 4096;
    const HellaSwagResult a = evaluate_hellaswag(*model, tokenizer(), items, one);
    const HellaSwagResult b = evaluate_hellaswag(*model, tokenizer(), items, many);
    for (size_t i = 0; i < items.size(); ++i) {
        for (size_t j = 0; j < 4; ++j) {
            EXPECT_NEAR(a.scores[i].sum_loss[j], b.scores[i].sum_loss[j], 1e-4);
        }
        EXPECT_EQ(a.scores[i].pred_norm, b.scores[i].pred_norm);
    }
}

// --batch-items far beyond the items there are sizes nothing by the option, and scoring that
// cannot fit in memory is refused with the figures before the cache is allocated (it used to
// grow for minutes or end in std::bad_alloc).
TEST(HellaSwagScoring, BuffersFollowTheWorkAndOversizeIsRefused) {
    GptConfig small;
    small.n_layer = 2;
    small.n_head = 2;
    small.n_embd = 32;
    small.block_size = 64;
    small.vocab_size = 50257;
    GptModel model(small, 1, 1);
    model.init_weights(5);
    std::vector<HellaSwagItem> items(3);
    for (size_t i = 0; i < items.size(); ++i) {
        items[i].context = items[i].raw_context = "A man is sitting on a roof. he";
        items[i].endings = items[i].raw_endings = {" starts.", " stops.", " sits.", " runs."};
        items[i].label = static_cast<int>(i);
    }
    HellaSwagOptions options;
    options.progress = false;
    options.items_per_batch = 1'000'000'000;  // 4e9 cache rows if sized by the option
    EXPECT_EQ(evaluate_hellaswag(model, tokenizer(), items, options).items, 3);

    // 96 layers × 4·300 rows × 1000 positions × 2·128 floats: ~110 GiB of cache.
    GptConfig deep = small;
    deep.n_layer = 96;
    deep.n_embd = 128;
    deep.block_size = 1024;
    GptModel deep_model(deep, 1, 1);
    std::string long_context;
    for (int i = 0; i < 990; ++i) long_context += " roof";
    std::vector<HellaSwagItem> many(300, items[0]);
    for (auto& item : many) item.context = item.raw_context = long_context;
    options.items_per_batch = 300;
    const std::string message =
        testing::error_message([&] { evaluate_hellaswag(deep_model, tokenizer(), many, options); });
    EXPECT_NE(message.find("HellaSwag scoring of 300 items at once needs"), std::string::npos)
        << message;
    EXPECT_NE(message.find("lower --batch-items"), std::string::npos) << message;
}

TEST(HellaSwagEvalCommand, PrintsBothStylesAndWritesJson) {
    testing::TempDir dir;
    const std::string cmd = testing::greenmoe_binary().string() + " eval --checkpoint " +
                            fixture("tiny_gpt2").string() + " --task hellaswag --data " +
                            shared_hellaswag().string() + " --limit 6 -q --tokenizer " +
                            testing::tokenizer_dir().string() + " --json " +
                            (dir / "r.json").string();
    const auto r = run_command(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("hellaswag: 6 items"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("harness acc"), std::string::npos) << r.output;
    const auto j = nlohmann::json::parse(read_file(dir / "r.json"));
    const auto& want = expected().at("text");
    EXPECT_EQ(j.at("items").get<int>(), 6);
    EXPECT_DOUBLE_EQ(j.at("acc").get<double>(), want.at("acc").get<double>());
    EXPECT_DOUBLE_EQ(j.at("acc_norm").get<double>(), want.at("acc_norm").get<double>());
    EXPECT_DOUBLE_EQ(j.at("harness_acc_norm").get<double>(),
                     want.at("harness_acc_norm").get<double>());
}

TEST(HellaSwagEvalCommand, BadInputsGiveOneClearError) {
    const std::string base = testing::greenmoe_binary().string() + " eval --checkpoint " +
                             fixture("tiny_gpt2").string() + " -q";
    auto r = run_command(base + " --data /nonexistent/hs.jsonl");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("--data /nonexistent/hs.jsonl: no such file or folder"),
              std::string::npos)
        << r.output;
    r = run_command(base + " --task winogrande");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("winogrande"), std::string::npos) << r.output;
    testing::TempDir dir;
    testing::write_text_file(dir / "bad.jsonl", "{\"activity_label\": \"x\"}\n");
    r = run_command(base + " --data " + (dir / "bad.jsonl").string());
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("bad.jsonl:1"), std::string::npos) << r.output;
    r = run_command(testing::greenmoe_binary().string() + " eval --checkpoint " +
                    (dir / "missing").string() + " --data " + shared_hellaswag().string());
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("no such file or folder"), std::string::npos) << r.output;
}

// All 10,042 items with the nano model (random weights; the note gives a trained one's
// score). Minutes of work: run by `ctest -L long` (scripts/test.sh -L long).
TEST(HellaSwagLong, AllItemsWithNano) {
    if (std::getenv("GREENMOE_LONG_TESTS") == nullptr) {
        GTEST_SKIP() << "longer test: set GREENMOE_LONG_TESTS=1 (ctest -L long)";
    }
    const TrainConfig config = train_config_from_json(
        load_config_json((fs::path(GREENMOE_SOURCE_DIR) / "configs" / "nano.json").string(), {}));
    GptModel model(config.model, 1, 1);
    model.init_weights(1);
    model.set_training(false);
    const auto items = read_hellaswag(shared_hellaswag());
    ASSERT_EQ(items.size(), 10042u);
    HellaSwagOptions options;
    options.progress = true;
    const HellaSwagResult r = evaluate_hellaswag(model, tokenizer(), items, options);
    EXPECT_EQ(r.items, 10042);
    // Random weights: chance level.
    EXPECT_GT(r.acc_norm(), 0.22);
    EXPECT_LT(r.acc_norm(), 0.28);
    std::printf("nano (random weights): %lld items in %.1f s, acc %.4f acc_norm %.4f\n",
                static_cast<long long>(r.items), r.seconds, r.acc(), r.acc_norm());
}

}  // namespace
}  // namespace greenmoe

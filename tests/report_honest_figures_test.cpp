// What the report says of a run's figures: one step numbering (1…N) in every log version,
// `greenmoe eval --json` results beside a run or passed with --eval, the parent of a healed
// run and its expert counts, energy that says it includes the PUE, the comparison table,
// and the dropped-token share and load CV over steps.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "greenmoe/report/html_report.h"
#include "greenmoe/report/run_data.h"
#include "greenmoe/train/trainer.h"
#include "test_support.h"

namespace greenmoe::report {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

size_t count(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t p = haystack.find(needle); p != std::string::npos;
         p = haystack.find(needle, p + needle.size()))
        ++n;
    return n;
}

std::string svg_by_id(const std::string& page, const std::string& id) {
    const size_t at = page.find("id=\"" + id + "\"");
    if (at == std::string::npos) return "";
    const size_t start = page.rfind("<svg", at);
    const size_t end = page.find("</svg>", at);
    if (start == std::string::npos || end == std::string::npos) return "";
    return page.substr(start, end + 6 - start);
}

std::string quote(const fs::path& p) {
    std::string q = "'";
    q += p.string();
    q += "'";
    return q;
}

json start_record(int log_version, int64_t resumed_from, const json& model) {
    json s = {{"type", "start"},
              {"resumed_from_step", resumed_from},
              {"parameters", 2000000},
              {"tokens_per_step", 1000},
              {"config", {{"model", model}, {"train", {{"max_steps", 4}}}}}};
    if (log_version > 1) s["log_version"] = log_version;
    return s;
}

json train_record(int64_t step, double dropped, double cv, bool with_moe = true) {
    json moe = json::array();
    for (int layer = 0; layer < (with_moe ? 2 : 0); ++layer) {
        moe.push_back({{"layer", layer},
                       {"kind", "mlp"},
                       {"load", {0.5, 0.25, 0.25}},
                       {"dropped", dropped * (layer + 1)},
                       {"load_cv", cv}});
    }
    return {{"type", "train"},
            {"step", step},
            {"loss", 5.0 - 0.1 * static_cast<double>(step)},
            {"tokens", 1000 * step},
            {"train_seconds", 1.0 * static_cast<double>(step)},
            {"energy_j", 100.0 * static_cast<double>(step)},
            {"co2e_g", 0.01 * static_cast<double>(step)},
            {"j_per_token", 0.1},
            {"pue", 1.58},
            {"energy_source", "estimated: cpu, ram (Green Algorithms)"},
            {"moe", moe}};
}

const json kMoeModel = {{"n_layer", 2},  {"n_head", 2},    {"n_embd", 32},    {"mlp", "switch"},
                        {"attn", "mha"}, {"n_experts", 3}, {"block_size", 16}};

// A log_version 2 run: train records 1…4, validation at 0, 2 and 4, done at 4.
void write_run(const fs::path& dir, const json& model = kMoeModel) {
    const bool moe = model["mlp"] != "dense";
    fs::create_directories(dir);
    std::string log = start_record(2, 0, model).dump() + "\n";
    log += json{{"type", "val"}, {"step", 0}, {"val_loss", 6.0}}.dump() + "\n";
    for (int step = 1; step <= 4; ++step) {
        log += train_record(step, 0.01 * step, 0.1 * step, moe).dump() + "\n";
        if (step % 2 == 0)
            log +=
                json{{"type", "val"}, {"step", step}, {"val_loss", 6.0 - 0.2 * step}}.dump() + "\n";
    }
    json done = {{"type", "done"},
                 {"step", 4},
                 {"train_loss", 4.6},
                 {"val_loss", 5.2},
                 {"tokens", 4000},
                 {"train_seconds", 4.0},
                 {"energy_j", 400.0},
                 {"co2e_g", 0.04},
                 {"j_per_token", 0.1},
                 {"pue", 1.58},
                 {"energy_source", "estimated: cpu, ram (Green Algorithms)"}};
    log += done.dump() + "\n";
    testing::write_text_file(dir / "log.jsonl", log);
}

TEST(ReportStepNumbering, EveryLogVersionReadsAsStepsOneToN) {
    // Version 1 (no log_version): train records 0…3; version 2: 1…4. Both read as 1…4, and
    // the last step is 4 either way.
    std::string v1 = start_record(1, 0, kMoeModel).dump() + "\n";
    std::string v2 = start_record(2, 0, kMoeModel).dump() + "\n";
    for (int i = 0; i < 4; ++i) {
        v1 += train_record(i, 0, 0).dump() + "\n";
        v2 += train_record(i + 1, 0, 0).dump() + "\n";
    }
    for (const std::string& text : {v1, v2}) {
        RunData run;
        parse_run_log(text, "run/log.jsonl", run);
        ASSERT_EQ(run.train.size(), 4u);
        for (size_t i = 0; i < 4; ++i) EXPECT_EQ(run.train[i].step, int64_t(i) + 1);
        EXPECT_EQ(*run_totals(run).last_step, 4);
    }
}

TEST(ReportStepNumbering, AResumedSegmentKeepsTheCheckpointsStepAndRedoesItsValidation) {
    // Checkpoint at step 2: train 1, 2 stay; the validation at step 2 is made again.
    std::string log = start_record(2, 0, kMoeModel).dump() + "\n";
    log += train_record(1, 0, 0).dump() + "\n" + train_record(2, 0, 0).dump() + "\n";
    log += json{{"type", "val"}, {"step", 2}, {"val_loss", 100.0}}.dump() + "\n";
    log += train_record(3, 0, 0).dump() + "\n";  // past the checkpoint: the killed segment
    log += start_record(2, 2, kMoeModel).dump() + "\n";
    log += json{{"type", "val"}, {"step", 2}, {"val_loss", 4.0}}.dump() + "\n";
    log += train_record(3, 0, 0).dump() + "\n" + train_record(4, 0, 0).dump() + "\n";
    RunData run;
    parse_run_log(log, "run/log.jsonl", run);
    ASSERT_EQ(run.train.size(), 4u);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(run.train[i].step, int64_t(i) + 1);
    ASSERT_EQ(run.val.size(), 1u);
    EXPECT_DOUBLE_EQ(run.val[0].val_loss, 4.0);
}

TEST(ReportEvalResults, AnEvalJsonBesideTheRunFeedsHellaSwagAndFigure1) {
    testing::TempDir tmp;
    write_run(tmp / "a");
    write_run(tmp / "b");
    const json result = {{"task", "hellaswag"},
                         {"items", 10042},
                         {"acc", 0.29},
                         {"acc_norm", 0.31},
                         {"model", "a"},
                         {"model_absolute", (tmp / "a").string()},
                         {"step", 4}};
    testing::write_text_file(tmp / "a" / "eval_hellaswag.json", result.dump(2));
    // Other results beside it (val-loss) are not HellaSwag: left out of the plot.
    testing::write_text_file(tmp / "a" / "eval_val.json",
                             json{{"task", "val-loss"}, {"val_loss", 5.0}}.dump());
    const RunData a = read_run(tmp / "a");
    ASSERT_EQ(a.evals.size(), 1u);
    EXPECT_EQ(a.evals[0].step, 4);
    EXPECT_DOUBLE_EQ(*a.evals[0].acc_norm, 0.31);
    EXPECT_EQ(*a.evals[0].items, 10042);
    const std::string page = render_report_html({a, read_run(tmp / "b")});
    EXPECT_EQ(count(svg_by_id(page, "plot-hellaswag"), "class=\"pt\""), 2u);  // acc, acc_norm
    EXPECT_EQ(count(svg_by_id(page, "plot-figure1"), "class=\"pt\""), 1u);
    EXPECT_NE(page.find("eval_hellaswag.json from eval --json"), std::string::npos);

    // Passed to report instead: it goes to the run whose checkpoint it evaluated.
    fs::remove(tmp / "a" / "eval_hellaswag.json");
    json of_b = result;
    of_b["model_absolute"] = (tmp / "b").string();
    of_b["weights"] = (tmp / "b/checkpoints/step_00000004/model.safetensors").string();
    testing::write_text_file(tmp / "b.json", of_b.dump());
    const auto bin = testing::greenmoe_binary().string();
    auto r =
        testing::run_command(bin + " report -q " + quote(tmp / "a") + " " + quote(tmp / "b") +
                             " --eval " + quote(tmp / "b.json") + " -o " + quote(tmp / "r.html"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string cli_page = testing::read_text_file(tmp / "r.html");
    const size_t card_b = cli_page.find("id=\"run-1\"");
    ASSERT_NE(card_b, std::string::npos);
    EXPECT_NE(cli_page.find("b.json from eval --json", card_b), std::string::npos);
    EXPECT_EQ(count(svg_by_id(cli_page, "plot-figure1"), "class=\"pt\""), 1u);

    // A result of a model that is none of the runs: an error naming both.
    of_b["model_absolute"] = (tmp / "elsewhere").string();
    of_b.erase("weights");
    testing::write_text_file(tmp / "c.json", of_b.dump());
    r = testing::run_command(bin + " report -q " + quote(tmp / "a") + " " + quote(tmp / "b") +
                             " --eval " + quote(tmp / "c.json"));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("c.json"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("elsewhere"), std::string::npos) << r.output;
}

TEST(ReportEvalResults, EvalJsonOfATrainedRunLandsAtItsCheckpointsStep) {
    testing::TempDir tmp;
    TrainConfig c;
    c.model.n_layer = 1;
    c.model.n_head = 2;
    c.model.n_embd = 32;
    c.model.block_size = 64;
    c.batch_size = 2;
    c.seq_len = 16;
    c.max_steps = 3;
    c.val_every = 0;
    c.dataset = "tinyshakespeare";
    TrainOptions o;
    o.out_dir = tmp / "run";
    o.data.data_dir = testing::shared_data();
    o.data.cache_dir = tmp / "cache";
    o.quiet = true;
    train(c, o);
    const auto r = testing::run_command(
        testing::greenmoe_binary().string() + " eval -q --checkpoint " + quote(tmp / "run") +
        " --limit 3 --no-energy --data " +
        quote(testing::shared_data() / "hellaswag" / "hellaswag_val_full.txt.bz2") +
        " --tokenizer " + quote(testing::tokenizer_dir()) + " --json " +
        quote(tmp / "run" / "eval_hellaswag.json"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const json result = json::parse(testing::read_text_file(tmp / "run" / "eval_hellaswag.json"));
    EXPECT_EQ(result["step"], 3);
    EXPECT_EQ(result["model_absolute"], fs::absolute(tmp / "run").lexically_normal().string());
    const RunData run = read_run(tmp / "run");
    EXPECT_TRUE(eval_result_belongs_to(run, result));
    ASSERT_EQ(run.evals.size(), 1u);
    EXPECT_EQ(run.evals[0].step, 3);
    EXPECT_EQ(*run.evals[0].items, 3);
}

TEST(ReportParent, AHealedRunShowsItsParentItsCostAndItsExperts) {
    testing::TempDir tmp;
    json model = kMoeModel;
    model["n_experts_by_layer"] = {2, 1};
    write_run(tmp / "healed", model);
    const json parent = {
        {"path", "/runs/pruned"},
        {"run", "/runs/original"},
        {"co2e_g", 12.5},
        {"segments", 2},
        {"simplified", {{"criterion", "nmi"}, {"kept_experts", {{"0", {0, 2}}, {"1", {1}}}}}}};
    testing::write_text_file(tmp / "healed" / "parent.json", parent.dump(2));
    const RunData run = read_run(tmp / "healed");
    ASSERT_TRUE(run.parent.has_value());
    EXPECT_DOUBLE_EQ(*run_totals(run).parent_co2e_g, 12.5);
    const std::string page = render_report_html({run});
    EXPECT_NE(page.find("/runs/pruned, pruned by greenmoe simplify (nmi); trained in "
                        "/runs/original"),
              std::string::npos);
    EXPECT_NE(page.find("12.5 g CO2e (the parent run&#39;s emissions.csv, 2 segments)"),
              std::string::npos)
        << page.substr(page.find("Parent CO2e"), 200);
    EXPECT_NE(page.find("block 0: 2 of 3 (originally 0 2); block 1: 1 of 3 (originally 1)"),
              std::string::npos);
    // The comparison table counts the parent's CO2e beside the run's own.
    EXPECT_NE(page.find("40.0 mg CO2e + 12.5 g CO2e parent"), std::string::npos);
}

TEST(ReportEnergy, EveryEnergyFigureSaysItIncludesThePue) {
    testing::TempDir tmp;
    write_run(tmp / "a");
    const std::string page = render_report_html({read_run(tmp / "a")});
    EXPECT_NE(page.find("400 J (0.111 Wh) incl. PUE 1.58, estimated"), std::string::npos)
        << page.substr(page.find(">Energy<"), 300);
    EXPECT_NE(page.find("40.0 mg CO2e incl. PUE 1.58, estimated"), std::string::npos);
    EXPECT_NE(page.find("J/token (incl. PUE)"), std::string::npos);
    EXPECT_NE(svg_by_id(page, "plot-energy").find("energy incl. PUE (J)"), std::string::npos);
    EXPECT_EQ(pue_note(std::nullopt), "incl. PUE");

    // An older log without "pue": emissions.csv says which (energy-weighted over segments).
    std::string log = testing::read_text_file(tmp / "a" / "log.jsonl");
    for (size_t at = log.find(",\"pue\":1.58"); at != std::string::npos;
         at = log.find(",\"pue\":1.58"))
        log.erase(at, std::string(",\"pue\":1.58").size());
    testing::write_text_file(tmp / "a" / "log.jsonl", log);
    testing::write_text_file(tmp / "a" / "emissions.csv",
                             "duration,emissions,energy_consumed,pue\n1,0.1,0.3,1.5\n1,0.1,0.2,"
                             "1.0\n");
    const RunTotals t = run_totals(read_run(tmp / "a"));
    ASSERT_TRUE(t.pue.has_value());
    EXPECT_NEAR(*t.pue, 0.5 / (0.2 + 0.2), 1e-12);
}

TEST(ReportComparison, OneRowPerRunWithItsFigures) {
    testing::TempDir tmp;
    write_run(tmp / "a");
    json dense = kMoeModel;
    dense["mlp"] = "dense";
    write_run(tmp / "b", dense);
    const std::string page = render_report_html({read_run(tmp / "a"), read_run(tmp / "b")});
    const size_t at = page.find("id=\"comparison\"");
    ASSERT_NE(at, std::string::npos);
    const std::string table = page.substr(at, page.find("</table>", at) - at);
    EXPECT_EQ(count(table, "<tr>"), 3u);  // header + 2 runs
    for (const char* header :
         {"Parameters", "Tokens", "Val loss", "HellaSwag acc_norm", "J/token", "CO2e"})
        EXPECT_NE(table.find(header), std::string::npos) << header;
    EXPECT_NE(table.find("<td>2.00M</td><td>4.00k</td><td>5.2000</td>"), std::string::npos)
        << table;
    EXPECT_NE(table.find("0.100 J"), std::string::npos) << table;
    EXPECT_NE(table.find("not recorded"), std::string::npos);  // no HellaSwag
}

TEST(ReportMoe, DroppedTokensAndLoadCvOverSteps) {
    testing::TempDir tmp;
    write_run(tmp / "a");
    // One run: a line per MoE layer, a point per logged step.
    std::string page = render_report_html({read_run(tmp / "a")});
    std::string dropped = svg_by_id(page, "plot-dropped");
    EXPECT_EQ(count(dropped, "class=\"pt\""), 8u);
    EXPECT_NE(dropped.find("data-x=\"4\" data-y=\"0.08\""), std::string::npos) << dropped;
    EXPECT_EQ(count(svg_by_id(page, "plot-load-cv"), "class=\"pt\""), 8u);
    // Several runs: the mean over layers, one line per run; a dense run has none.
    json dense = kMoeModel;
    dense["mlp"] = "dense";
    write_run(tmp / "b", dense);
    page = render_report_html({read_run(tmp / "a"), read_run(tmp / "b")});
    dropped = svg_by_id(page, "plot-dropped");
    EXPECT_EQ(count(dropped, "class=\"pt\""), 4u);
    EXPECT_NE(dropped.find("data-x=\"4\" data-y=\"0.06\""), std::string::npos) << dropped;
    EXPECT_EQ(count(svg_by_id(page, "plot-load-cv"), "class=\"pt\""), 4u);
}

}  // namespace
}  // namespace greenmoe::report

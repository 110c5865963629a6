// The report's run reader: log.jsonl records (with and without energy/eval fields, resumed
// runs), errors naming file:line, emissions.csv, and the totals a run card shows.
#include <gtest/gtest.h>

#include <string>

#include "greenmoe/report/run_data.h"
#include "test_support.h"

namespace greenmoe::report {
namespace {

using testing::error_message;

const char* kStart =
    R"({"type":"start","resumed_from_step":0,"parameters":1234567,"tokens_per_step":2048,)"
    R"("grad_accum_steps":1,"config":{"model":{"n_layer":2,"mlp":"switch","n_experts":4}}})";

RunData parse(const std::string& text) {
    RunData run;
    parse_run_log(text, "run/log.jsonl", run);
    return run;
}

TEST(ReportRunData, ReadsEveryRecordType) {
    const std::string log =
        std::string(kStart) + "\n" +
        R"({"type":"val","step":0,"val_loss":10.9,"val_tokens":4096,"seconds":0.5})"
        "\n"
        R"({"type":"train","step":0,"loss":10.8,"lr":0.001,"grad_norm":1.5,"tokens":2048,)"
        R"("tokens_per_s":900.5,"step_ms":2270,"train_seconds":2.27,"aux_loss":0.01,)"
        R"("moe":[{"layer":0,"kind":"mlp","load":[0.1,0.2,0.3,0.4],"dropped":0.05,)"
        R"("load_cv":0.4,"entropy":1.2,"bias":[0,0,0,0]},{"layer":1,"kind":"mlp",)"
        R"("load":[0.25,0.25,0.25,0.25]}],"energy_j":12.5,"co2e_g":0.002,)"
        R"("j_per_token":0.006,"energy_source":"rapl"})"
        "\n"
        R"({"type":"eval","step":1,"task":"hellaswag","items":100,"acc":0.25,"acc_norm":0.27,)"
        R"("harness_acc":0.25,"harness_acc_norm":0.26,"seconds":3})"
        "\n"
        R"({"type":"sample","step":1,"text":"Hello <world>"})"
        "\n"
        R"({"type":"some_future_record","step":1})"
        "\n\n"
        R"({"type":"done","step":2,"train_loss":9.5,"tokens":4096,"train_seconds":4.5,)"
        R"("val_loss":9.9,"energy_j":30,"co2e_g":0.005,"energy_source":"rapl"})"
        "\n";
    const RunData run = parse(log);
    ASSERT_EQ(run.starts.size(), 1u);
    EXPECT_EQ(run.starts[0].parameters, 1234567);
    EXPECT_EQ(run.starts[0].config["model"]["mlp"], "switch");
    ASSERT_EQ(run.train.size(), 1u);
    const TrainRecord& t = run.train[0];
    EXPECT_DOUBLE_EQ(t.loss, 10.8);
    EXPECT_DOUBLE_EQ(*t.tokens_per_s, 900.5);
    EXPECT_EQ(*t.tokens, 2048);
    EXPECT_DOUBLE_EQ(*t.energy.energy_j, 12.5);
    EXPECT_EQ(t.energy.source, "rapl");
    ASSERT_EQ(t.moe.size(), 2u);
    EXPECT_EQ(t.moe[0].load, (std::vector<double>{0.1, 0.2, 0.3, 0.4}));
    EXPECT_DOUBLE_EQ(*t.moe[0].load_cv, 0.4);
    EXPECT_EQ(t.moe[1].layer, 1);
    EXPECT_FALSE(t.moe[1].dropped.has_value());
    ASSERT_EQ(run.val.size(), 1u);
    EXPECT_DOUBLE_EQ(run.val[0].val_loss, 10.9);
    ASSERT_EQ(run.evals.size(), 1u);
    EXPECT_EQ(run.evals[0].task, "hellaswag");
    EXPECT_DOUBLE_EQ(*run.evals[0].acc_norm, 0.27);
    EXPECT_EQ(*run.evals[0].items, 100);
    ASSERT_EQ(run.samples.size(), 1u);
    EXPECT_EQ(run.samples[0].text, "Hello <world>");
    EXPECT_EQ(run.ignored_records, 1);
    ASSERT_TRUE(run.done.has_value());
    EXPECT_DOUBLE_EQ(*run.done->energy.co2e_g, 0.005);

    const RunTotals totals = run_totals(run);
    EXPECT_DOUBLE_EQ(*totals.energy_j, 30.0);  // the done record's total wins
    EXPECT_DOUBLE_EQ(*totals.co2e_g, 0.005);
    EXPECT_TRUE(totals.measured);
    EXPECT_DOUBLE_EQ(*totals.final_train_loss, 9.5);
    EXPECT_DOUBLE_EQ(*totals.final_val_loss, 9.9);
    EXPECT_EQ(*totals.last_step, 2);
    ASSERT_TRUE(totals.last_eval.has_value());
    EXPECT_DOUBLE_EQ(*totals.last_eval->acc_norm, 0.27);
}

TEST(ReportRunData, RunWithoutEnergyOrEvalHasNoneOfThem) {
    const RunData run = parse(
        std::string(kStart) + "\n" +
        R"({"type":"train","step":0,"loss":10.8,"tokens":2048,"train_seconds":1.0})"
        "\n"
        R"({"type":"train","step":1,"loss":10.1,"tokens":4096,"grad_norm":null,"train_seconds":2.0})"
        "\n");
    ASSERT_EQ(run.train.size(), 2u);
    EXPECT_FALSE(run.train[1].grad_norm.has_value());  // ∞ is written as null
    EXPECT_FALSE(run.train[1].tokens_per_s.has_value());
    const RunTotals t = run_totals(run);
    EXPECT_FALSE(t.energy_j.has_value());
    EXPECT_FALSE(t.co2e_g.has_value());
    EXPECT_FALSE(t.measured);
    EXPECT_TRUE(t.energy_source.empty());
    EXPECT_FALSE(t.last_eval.has_value());
    EXPECT_FALSE(t.final_val_loss.has_value());
    EXPECT_DOUBLE_EQ(*t.final_train_loss, 10.1);
    EXPECT_EQ(*t.last_step, 2);
    EXPECT_EQ(*t.tokens, 4096);
    EXPECT_DOUBLE_EQ(*t.train_seconds, 2.0);
}

TEST(ReportRunData, MalformedLineNamesFileAndLine) {
    const std::string good = std::string(kStart) + "\n";
    std::string msg = error_message([&] {
        parse(good + R"({"type":"train","step":0,"loss":1.0})" + "\n" +
              R"({"type":"train","step":1,"loss":)" + "\n");
    });
    EXPECT_NE(msg.find("run/log.jsonl:3:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;

    msg = error_message([&] { parse(good + "[1,2]\n"); });
    EXPECT_NE(msg.find("run/log.jsonl:2:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"type\""), std::string::npos) << msg;

    msg = error_message([&] { parse(good + R"({"type":"train","step":0,"loss":"low"})" + "\n"); });
    EXPECT_NE(msg.find("run/log.jsonl:2:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"loss\""), std::string::npos) << msg;

    msg = error_message([&] { parse(good + R"({"type":"val","val_loss":3.0})" + "\n"); });
    EXPECT_NE(msg.find("run/log.jsonl:2:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"step\""), std::string::npos) << msg;

    msg = error_message(
        [&] { parse(good + R"({"type":"train","step":0,"loss":1,"moe":[{"load":"x"}]})" + "\n"); });
    EXPECT_NE(msg.find("run/log.jsonl:2:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("load"), std::string::npos) << msg;

    msg = error_message([&] { parse(good + R"({"type":"eval","step":1.5})" + "\n"); });
    EXPECT_NE(msg.find("run/log.jsonl:2:"), std::string::npos) << msg;
}

TEST(ReportRunData, TornLastLineIsLeftOutWithAWarning) {
    const std::string good =
        std::string(kStart) + "\n" + R"({"type":"train","step":0,"loss":1.0})" + "\n";
    for (const char* torn : {R"({"type":"train","step":1,"lo)", R"({"ty)", "{"}) {
        RunData run = parse(good + torn);
        ASSERT_EQ(run.train.size(), 1u);
        ASSERT_EQ(run.warnings.size(), 1u);
        EXPECT_NE(run.warnings[0].find("run/log.jsonl:3: the last line is cut off"),
                  std::string::npos)
            << run.warnings[0];
    }
    // A whole last line without its end of line is read, with no warning.
    RunData run = parse(good + R"({"type":"train","step":1,"loss":0.5})");
    EXPECT_EQ(run.train.size(), 2u);
    EXPECT_TRUE(run.warnings.empty());
    // A torn line before others is damage, not an interrupted write: an error naming it.
    const std::string msg = error_message([&] {
        parse(good + R"({"type":"train","step":1,"lo)" + "\n" +
              R"({"type":"train","step":2,"loss":0.5})" + "\n");
    });
    EXPECT_NE(msg.find("run/log.jsonl:3:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;
}

TEST(ReportRunData, ResumedRunKeepsOneRecordPerStep) {
    auto train = [](int step, double loss) {
        return R"({"type":"train","step":)" + std::to_string(step) + R"(,"loss":)" +
               std::to_string(loss) + "}\n";
    };
    const std::string resume =
        R"({"type":"start","resumed_from_step":3,"parameters":1234567,"config":{}})"
        "\n";
    // As RunLog writes it: the old segment's lines past the checkpoint already dropped.
    std::string log = std::string(kStart) + "\n" + train(0, 9) + train(1, 8) + train(2, 7) +
                      resume + train(3, 6) + train(4, 5);
    RunData run = parse(log);
    ASSERT_EQ(run.starts.size(), 2u);
    EXPECT_EQ(run.starts[1].resumed_from_step, 3);
    EXPECT_EQ(run.starts[1].line, 5);
    // A log without log_version numbered train records from 0: read as steps 1…N.
    ASSERT_EQ(run.train.size(), 5u);
    for (size_t i = 0; i < run.train.size(); ++i) EXPECT_EQ(run.train[i].step, int64_t(i) + 1);

    // A log whose old segment ran on past the checkpoint (killed before its next save):
    // the resumed segment's records replace those steps, they are not drawn twice.
    log = std::string(kStart) + "\n" + train(0, 9) + train(1, 8) + train(2, 7) + train(3, 100) +
          train(4, 100) + R"({"type":"val","step":4,"val_loss":100})" + "\n" + resume +
          train(3, 6) + train(4, 5) + train(5, 4);
    run = parse(log);
    ASSERT_EQ(run.train.size(), 6u);
    for (size_t i = 0; i < run.train.size(); ++i) {
        EXPECT_EQ(run.train[i].step, int64_t(i) + 1);
        EXPECT_LT(run.train[i].loss, 50.0);
    }
    EXPECT_TRUE(run.val.empty());

    // Without a start line in between, repeated steps still replace the earlier ones.
    run = parse(std::string(kStart) + "\n" + train(0, 9) + train(1, 100) + train(2, 100) +
                train(1, 8));
    ASSERT_EQ(run.train.size(), 2u);
    EXPECT_DOUBLE_EQ(run.train[1].loss, 8.0);
}

TEST(ReportRunData, EmissionsCsv) {
    const std::string csv =
        "timestamp,project_name,run_id,duration,emissions,emissions_rate,energy_consumed,"
        "country_name,cpu_model\n"
        "2025-01-01T10:00:00,greenmoe,a,120.5,0.0012,1e-5,0.0031,France,\"Intel, Xeon "
        "\"\"Gold\"\"\"\n"
        "2025-01-01T11:00:00,greenmoe,b,60,0.0008,1e-5,0.0019,France,\"multi\nline\"\r\n";
    const auto rows = parse_emissions_csv(csv, "run/emissions.csv");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_DOUBLE_EQ(*rows[0].duration_s, 120.5);
    EXPECT_DOUBLE_EQ(*rows[0].emissions_kg, 0.0012);
    EXPECT_DOUBLE_EQ(*rows[1].energy_kwh, 0.0019);
    EXPECT_EQ(rows[0].fields.at("cpu_model"), "Intel, Xeon \"Gold\"");
    EXPECT_EQ(rows[1].fields.at("cpu_model"), "multi\nline");

    // A log without energy fields falls back on the CSV's totals.
    RunData run =
        parse(std::string(kStart) + "\n" + R"({"type":"train","step":0,"loss":1})" + "\n");
    run.emissions = rows;
    const RunTotals t = run_totals(run);
    EXPECT_NEAR(*t.co2e_g, 2.0, 1e-9);
    EXPECT_NEAR(*t.energy_j, 0.005 * 3.6e6, 1e-6);
    EXPECT_EQ(t.energy_source, "emissions.csv");
    EXPECT_FALSE(t.measured);

    std::string msg = error_message(
        [&] { parse_emissions_csv("duration,emissions\n1,2\n3\n", "run/emissions.csv"); });
    EXPECT_NE(msg.find("run/emissions.csv:3:"), std::string::npos) << msg;
    msg = error_message(
        [&] { parse_emissions_csv("duration,emissions\n1,lots\n", "run/emissions.csv"); });
    EXPECT_NE(msg.find("run/emissions.csv:2:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("emissions"), std::string::npos) << msg;
    EXPECT_TRUE(parse_emissions_csv("", "x.csv").empty());
}

TEST(ReportRunData, MeasuredOrEstimated) {
    EXPECT_TRUE(energy_source_is_measured("rapl"));
    EXPECT_TRUE(energy_source_is_measured("nvml"));
    EXPECT_FALSE(energy_source_is_measured("estimate"));
    EXPECT_FALSE(energy_source_is_measured("rapl+estimate"));
    EXPECT_FALSE(energy_source_is_measured(""));
}

TEST(ReportRunData, ReadRunFolder) {
    testing::TempDir tmp;
    std::string msg = error_message([&] { read_run(tmp / "nope"); });
    EXPECT_NE(msg.find("nope"), std::string::npos) << msg;
    EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;

    std::filesystem::create_directory(tmp / "empty");
    msg = error_message([&] { read_run(tmp / "empty"); });
    EXPECT_NE(msg.find("no log.jsonl"), std::string::npos) << msg;

    std::filesystem::create_directory(tmp / "blank");
    testing::write_text_file(tmp / "blank" / "log.jsonl", "\n");
    msg = error_message([&] { read_run(tmp / "blank"); });
    EXPECT_NE(msg.find("no start or train records"), std::string::npos) << msg;

    std::filesystem::create_directory(tmp / "bad");
    testing::write_text_file(tmp / "bad" / "log.jsonl", std::string(kStart) + "\n{oops\n");
    msg = error_message([&] { read_run(tmp / "bad"); });
    EXPECT_NE(msg.find((tmp / "bad" / "log.jsonl").string() + ":2:"), std::string::npos) << msg;

    std::filesystem::create_directory(tmp / "run-a");
    testing::write_text_file(
        tmp / "run-a" / "log.jsonl",
        std::string(kStart) + "\n" + R"({"type":"train","step":0,"loss":1})" + "\n");
    testing::write_text_file(tmp / "run-a" / "emissions.csv", "duration,emissions\n5,0.001\n");
    const RunData run = read_run((tmp / "run-a").string() + "/");
    EXPECT_EQ(run.name, "run-a");
    EXPECT_EQ(run.train.size(), 1u);
    EXPECT_EQ(run.emissions.size(), 1u);
}

}  // namespace
}  // namespace greenmoe::report

// The greenmoe program as a user meets it: help, and one clear error line (non-zero
// exit, never a crash) for bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/io/npy.h"
#include "greenmoe/io/token_shard.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using testing::run_command;

std::string bin() {
    return testing::greenmoe_binary().string();
}

// Exit code 1 and exactly one line, starting "greenmoe: error:" and naming `what`.
void expect_one_error_line(const testing::CommandResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(r.output.rfind("greenmoe: error: ", 0), 0u) << r.output;
    EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
}

std::string tiny_train_args(const testing::TempDir& tmp) {
    return " --set model.n_layer=1 --set model.n_head=1 --set model.n_embd=16"
           " --set model.block_size=16 --set train.batch_size=2 --set train.seq_len=16"
           " --set eval.val_every=0 --set train.max_steps=2 -q --out " +
           (tmp / "run").string();
}

TEST(Cli, HelpListsEveryCommand) {
    const auto r = run_command(bin() + " --help");
    EXPECT_EQ(r.exit_code, 0);
    for (const char* cmd :
         {"prepare", "train", "eval", "generate", "convert", "simplify", "energy", "report"}) {
        EXPECT_NE(r.output.find(cmd), std::string::npos) << cmd;
        const auto sub = run_command(bin() + " " + cmd + " --help");
        EXPECT_EQ(sub.exit_code, 0) << cmd;
        EXPECT_NE(sub.output.find("--"), std::string::npos) << cmd;
    }
    EXPECT_NE(run_command(bin()).exit_code, 0);
}

// Exit code 2 (a command line that cannot work) and one line naming `what`.
void expect_usage_error(const std::string& args, const std::string& what) {
    SCOPED_TRACE(args);
    const auto r = run_command(bin() + " " + args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(r.output.rfind("greenmoe: error: ", 0), 0u) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
    // Real bounds, never the largest double.
    EXPECT_EQ(r.output.find("1.79"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("e+308"), std::string::npos) << r.output;
}

TEST(Cli, CommandLineErrorsExitWithStatus2) {
    testing::TempDir tmp;
    const std::string run = (tmp / "run").string();
    expect_usage_error("", "A subcommand is required");
    expect_usage_error("frobnicate", "unknown command 'frobnicate'");
    expect_usage_error("train --bogus -o " + run, "--bogus");
    expect_usage_error("train -o " + run + " --stop-at 0", "must be a whole number ≥ 1, got 0");
    expect_usage_error("train", "--out is required");
    expect_usage_error("generate --checkpoint " + run + " -n 0",
                       "must be a whole number ≥ 1, got 0");
    expect_usage_error("generate --checkpoint " + run + " --max-tokens=-5", "got -5");
    expect_usage_error("generate --checkpoint " + run + " -n 2.5", "got 2.5");
    expect_usage_error("generate --checkpoint " + run + " -n many", "got 'many'");
    expect_usage_error("generate --checkpoint " + run + " --top-k 0", "--top-k");
    expect_usage_error("generate --checkpoint " + run + " --temperature=-1",
                       "must be a number ≥ 0, got -1");
    expect_usage_error("eval --checkpoint " + run + " --limit 0", "--limit");
    expect_usage_error("eval --checkpoint " + run + " --val-tokens 0", "--val-tokens");
    expect_usage_error("eval --checkpoint " + run + " --task piqa,sciq", "unknown task 'sciq'");
    expect_usage_error("report --snapshots 30 " + run, "must be a number in [0, 24], got 30");
    expect_usage_error("energy --pue 0.5 -- true", "must be a number in [1, 10], got 0.5");
    expect_usage_error("energy --cpu-usage 0 -- true", "in (0, 1], got 0");
    expect_usage_error("energy --cores 0 -- true", "--cores");
    expect_usage_error("energy --cloud-region x -- true", "needs --cloud-provider");
    expect_usage_error("convert -o " + run, "give --to-hf");
    expect_usage_error("simplify --model " + run + " --out " + (tmp / "s").string(),
                       "--factor F, --keep N or --reduce P");
    expect_usage_error(
        "simplify --model " + run + " --out " + (tmp / "s").string() + " --keep 1 --factor 2",
        "excludes");
    // Output paths that cannot be written, refused before any work.
    testing::write_text_file(tmp / "file", "x");
    const std::string under_file = (tmp / "file" / "x").string();
    expect_usage_error("train -o " + under_file, "--out " + under_file);
    expect_usage_error("eval --checkpoint " + run + " --json " + under_file, "is not a folder");
    expect_usage_error("energy --csv " + tmp.path().string() + " -- true",
                       "is a folder, expected a file name");
    expect_usage_error("prepare -o " + (tmp / "file").string() + " " + (tmp / "file").string(),
                       "is a file, expected a folder");
    expect_usage_error("simplify --model " + run + " --out " + under_file + " --keep 1",
                       "is not a folder");
    expect_usage_error("report -o " + tmp.path().string() + " " + run,
                       "is a folder, expected a file name");
    // Bad data is not a usage error: it keeps status 1.
    const auto missing = run_command(bin() + " generate --checkpoint " + run);
    EXPECT_EQ(missing.exit_code, 1) << missing.output;
}

TEST(Cli, HelpAndVersionExitZero) {
    auto r = run_command(bin() + " --version");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("greenmoe 0.1.0"), std::string::npos) << r.output;
    r = run_command(bin() + " generate --help");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("--top-k"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("error"), std::string::npos) << r.output;
}

// Kills a background process when the test ends, however it ends.
struct KillOnExit {
    long pid = 0;
    ~KillOnExit() {
        if (pid > 0) run_command("kill -9 " + std::to_string(pid));
    }
};

TEST(Cli, SecondTrainIntoABusyRunFolderIsRefused) {
    testing::TempDir tmp;
    std::vector<uint16_t> tokens(5000);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint16_t>(i % 100);
    write_token_shard(tmp / "d.bin", tokens.data(), tokens.size());
    const std::string train = bin() +
                              " train --no-energy --set data.train=" + (tmp / "d.bin").string() +
                              tiny_train_args(tmp);
    // The first one trains for long enough (it is killed at the end).
    const auto started =
        run_command(train + " --set train.max_steps=1000000 >/dev/null 2>&1 & echo $!");
    KillOnExit first{std::stol(started.output)};
    // It holds the lock from its start; its log appears a little later.
    for (int i = 0; i < 600 && !std::filesystem::exists(tmp / "run/log.jsonl"); ++i)
        run_command("sleep 0.1");
    ASSERT_TRUE(std::filesystem::exists(tmp / "run/log.jsonl"));
    const auto second = run_command(train);
    expect_one_error_line(
        second, "in use by another greenmoe process (pid " + std::to_string(first.pid) + ")");
}

TEST(Cli, SigintDuringTrainingSavesLogsAndExits130) {
    testing::TempDir tmp;
    std::vector<uint16_t> tokens(20000);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint16_t>(i % 1000);
    write_token_shard(tmp / "d.bin", tokens.data(), tokens.size());
    const auto run = tmp / "run";
    // The nano preset, on a tiny data set, for far more steps than the test waits for;
    // SIGINT once three steps are logged.
    const std::string train =
        bin() + " train --config " +
        (fs::path(GREENMOE_SOURCE_DIR) / "configs/nano.json").string() +
        " --set data.train=" + (tmp / "d.bin").string() +
        " --set eval.val_every=0 --set eval.sample_every=0 --set train.log_every=1"
        " --set train.max_steps=100000 --out " +
        run.string();
    std::string script = train;
    script += " >";
    script += (tmp / "out.txt").string();
    script += " 2>&1 &\npid=$!\nfor i in $(seq 1200); do\n  n=$(grep -c '\"type\":\"train\"' ";
    script += (run / "log.jsonl").string();
    script +=
        " 2>/dev/null)\n  [ \"${n:-0}\" -ge 3 ] && break\n  sleep 0.1\ndone\n"
        "kill -INT $pid\nwait $pid\necho \"exit=$?\"\n";
    testing::write_text_file(tmp / "run.sh", script);
    const auto r = run_command("bash " + (tmp / "run.sh").string());
    const std::string out = testing::read_text_file(tmp / "out.txt");
    EXPECT_NE(r.output.find("exit=130"), std::string::npos) << r.output << out;
    EXPECT_NE(out.find("stopped by SIGINT after step"), std::string::npos) << out;
    const auto latest = testing::read_text_file(run / "checkpoints/latest");
    EXPECT_EQ(latest.rfind("step_", 0), 0u) << latest;
    // The emissions row of the interrupted segment, and the log's last records.
    const std::string csv = testing::read_text_file(run / "emissions.csv");
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2) << csv;
    const std::string log = testing::read_text_file(run / "log.jsonl");
    EXPECT_NE(log.find("\"stopped_by\":\"SIGINT\""), std::string::npos) << log;
}

TEST(Cli, TrainWithoutConfigSaysWhichSettingsItUses) {
    testing::TempDir tmp;
    std::vector<uint16_t> tokens(5000);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint16_t>(i % 100);
    write_token_shard(tmp / "d.bin", tokens.data(), tokens.size());
    // tiny_train_args without -q (the note is a progress line).
    std::string command = bin();
    command += " train --no-energy --set data.train=";
    command += (tmp / "d.bin").string();
    command +=
        " --set model.n_layer=1 --set model.n_head=1 --set model.n_embd=16"
        " --set model.block_size=16 --set train.batch_size=2 --set train.seq_len=16"
        " --set eval.val_every=0 --set train.max_steps=2 --out ";
    command += (tmp / "run").string();
    command += " 2>&1";
    const auto r = run_command(command);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("no --config: the built-in defaults (1 layers"), std::string::npos)
        << r.output;
}

TEST(Cli, TruncatedShardIsOneClearError) {
    testing::TempDir tmp;
    std::vector<uint16_t> tokens(500, 7);
    write_token_shard(tmp / "ok.bin", tokens.data(), tokens.size());
    std::string bytes = testing::read_text_file(tmp / "ok.bin");
    testing::write_text_file(tmp / "cut.bin", bytes.substr(0, bytes.size() - 100));
    const auto r = run_command(bin() + " train --set data.train=" + (tmp / "cut.bin").string() +
                               tiny_train_args(tmp));
    expect_one_error_line(r, "cut.bin");
}

TEST(Cli, MalformedShardHeaderIsOneClearError) {
    testing::TempDir tmp;
    testing::write_text_file(tmp / "bad.bin", std::string(2048, 'x'));
    const auto r = run_command(bin() + " train --set data.train=" + (tmp / "bad.bin").string() +
                               tiny_train_args(tmp));
    expect_one_error_line(r, "bad.bin");
}

TEST(Cli, UnknownConfigKeyIsNamed) {
    testing::TempDir tmp;
    // Given by --set: the command line is wrong (status 2).
    expect_usage_error("train --set train.learning_rate=1" + tiny_train_args(tmp),
                       "train.learning_rate: unknown key");
    // In a preset file: the file is wrong (status 1), named with the key.
    testing::write_text_file(tmp / "preset.json", R"({"train": {"learning_rate": 1}})");
    const auto r =
        run_command(bin() + " train -c " + (tmp / "preset.json").string() + tiny_train_args(tmp));
    expect_one_error_line(r, "train.learning_rate: unknown key");
}

TEST(Cli, BadSetValuesAreCommandLineErrors) {
    testing::TempDir tmp;
    expect_usage_error("train --set model.n_experts=abc" + tiny_train_args(tmp),
                       "model.n_experts: expected a whole number, got \"abc\"");
    expect_usage_error("train --set model.n_experts=2.5" + tiny_train_args(tmp),
                       "model.n_experts: must be a whole number, got 2.5");
    expect_usage_error("train --set train.max_steps=-4 -q --out " + (tmp / "r").string(),
                       "--set train.max_steps=-4: train.max_steps must be ≥ 1, got -4");
    expect_usage_error("train --set train.grad_clip=-1" + tiny_train_args(tmp),
                       "train.grad_clip must be ≥ 0");
    expect_usage_error("train --set nosection=1" + tiny_train_args(tmp),
                       "expected section.key=value");
    EXPECT_FALSE(fs::exists(tmp / "run"));
    EXPECT_FALSE(fs::exists(tmp / "r"));
}

TEST(Cli, CorruptCheckpointIsOneClearError) {
    testing::TempDir tmp;
    std::vector<uint16_t> tokens(5000);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint16_t>(i % 100);
    write_token_shard(tmp / "d.bin", tokens.data(), tokens.size());
    const std::string train =
        bin() + " train --set data.train=" + (tmp / "d.bin").string() + tiny_train_args(tmp);
    ASSERT_EQ(run_command(train).exit_code, 0) << run_command(train).output;
    const auto ckpt = tmp / "run/checkpoints/step_00000002";
    // Truncated weights.
    std::string weights = testing::read_text_file(ckpt / "model.safetensors");
    testing::write_text_file(ckpt / "model.safetensors", weights.substr(0, weights.size() / 2));
    auto r = run_command(train + " --set train.max_steps=4 --resume-with-changes train.max_steps");
    expect_one_error_line(r, "model.safetensors");
    r = run_command(bin() + " generate -n 2 --checkpoint " + (tmp / "run").string());
    expect_one_error_line(r, "model.safetensors");
    // Malformed state.
    testing::write_text_file(ckpt / "model.safetensors", weights);
    testing::write_text_file(ckpt / "state.json", "{\"version\": 1, \"step\": ");
    r = run_command(train + " --set train.max_steps=4 --resume-with-changes train.max_steps");
    expect_one_error_line(r, "state.json");
}

TEST(Cli, MalformedSafetensorsForConvertIsOneClearError) {
    testing::TempDir tmp;
    testing::write_text_file(tmp / "x.safetensors",
                             std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10));
    const auto r = run_command(bin() + " convert --to-hf " + (tmp / "x.safetensors").string() +
                               " --out " + (tmp / "hf").string());
    expect_one_error_line(r, "x.safetensors");
}

TEST(Cli, TrainsOnBuildNanoGptNpyShards) {
    testing::TempDir tmp;
    std::vector<uint16_t> tokens(3000);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint16_t>((i * 31) % 50257);
    write_npy(tmp / "edu_fineweb_train_000001.npy", tokens.data(), {int64_t(tokens.size())});
    write_npy(tmp / "edu_fineweb_val_000000.npy", tokens.data(), {int64_t(tokens.size())});
    const auto r = run_command(
        bin() + " train --set 'data.train=" + (tmp / "edu_fineweb_train_*.npy").string() +
        "' --set 'data.val=" + (tmp / "edu_fineweb_val_*.npy").string() + "'" +
        tiny_train_args(tmp) + " --set eval.val_every=1 --set eval.val_tokens=64");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(testing::read_text_file(tmp / "run/log.jsonl").find("\"val_loss\""),
              std::string::npos);
}

TEST(Cli, PrepareThenTrainThenGenerateThenExport) {
    testing::TempDir tmp;
    const auto prep = run_command(
        bin() + " prepare " + (testing::shared_data() / "text/tinystories_sample.txt").string() +
        " --val-tokens 200 --name stories --out " + (tmp / "shards").string());
    ASSERT_EQ(prep.exit_code, 0) << prep.output;
    const auto trained = run_command(
        bin() + " train --set 'data.train=" + (tmp / "shards/stories_train_*.bin").string() +
        "' --set 'data.val=" + (tmp / "shards/stories_val_*.bin").string() + "'" +
        tiny_train_args(tmp) + " --set eval.val_every=1 --set eval.val_tokens=64");
    ASSERT_EQ(trained.exit_code, 0) << trained.output;
    // The text, then (on stderr) the energy summary, which differs between runs.
    const std::string generate =
        bin() + " generate -n 5 --seed 1 --prompt Once --checkpoint " + (tmp / "run").string();
    const auto gen = run_command(generate + " --no-energy");
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
    EXPECT_EQ(gen.output.rfind("Once", 0), 0u) << gen.output;
    const auto gen2 = run_command(generate + " --no-energy");
    EXPECT_EQ(gen.output, gen2.output) << "same seed, same text";
    const auto with_energy = run_command(generate);
    EXPECT_NE(with_energy.output.find("J/token"), std::string::npos) << with_energy.output;
    const auto exported = run_command(bin() + " convert --to-hf " + (tmp / "run").string() +
                                      " --out " + (tmp / "hf").string());
    ASSERT_EQ(exported.exit_code, 0) << exported.output;
    const auto imported = run_command(bin() + " convert --from-hf " + (tmp / "hf").string() +
                                      " --out " + (tmp / "back.safetensors").string());
    ASSERT_EQ(imported.exit_code, 0) << imported.output;
}

}  // namespace
}  // namespace greenmoe

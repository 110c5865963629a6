// `greenmoe train --lora`: LoRA fine-tuning of a tiny OLMoE on instruction data writes a PEFT
// adapter shaped as PEFT writes one, resumes bit-exactly, merges as merge-adapter does, lowers
// the loss, and refuses bad input by name.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/hf/lora_adapter.h"
#include "greenmoe/hf/lora_merge.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/lora/lora_trainer.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using testing::run_command;
using testing::TempDir;

fs::path source() {
    return GREENMOE_SOURCE_DIR;
}

std::string bin() {
    return testing::greenmoe_binary().string();
}

// A small conversation file in the fixture tokenizer's few pieces (other characters are <unk>).
fs::path write_conversations(const fs::path& file, int copies) {
    std::string text;
    const char* pairs[][2] = {{"the cat", "the bat"},
                              {"a hat", "the hat ate"},
                              {"bead", "the bead"},
                              {"the deed", "a bad cat"},
                              {"tea", "the tea the tea"}};
    for (int c = 0; c < copies; ++c) {
        for (const auto& p : pairs) {
            text +=
                nlohmann::json(
                    {{"conversations",
                      {{{"from", "human"}, {"value", p[0]}}, {{"from", "gpt"}, {"value", p[1]}}}}})
                    .dump();
            text += "\n";
        }
    }
    testing::write_text_file(file, text);
    return file;
}

// Options every run here shares: the tiny model's 16 positions, two sequences per micro-batch.
std::string lora_run(const fs::path& model, const fs::path& data, const fs::path& out,
                     const std::string& spec, const std::string& more = "") {
    return bin() + " train --init-from " + model.string() + " --lora " + spec + " --data " +
           data.string() + " --out " + out.string() +
           " --set train.seq_len=16 --set train.batch_size=2 -q --no-energy " + more;
}

// step → loss of the train records in a run's log.jsonl.
std::map<int64_t, double> logged_losses(const fs::path& run) {
    std::map<int64_t, double> losses;
    std::istringstream in(read_file(run / "log.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line);
        if (j["type"] == "train") losses[j["step"].get<int64_t>()] = j["loss"].get<double>();
    }
    return losses;
}

// Exit status `code` and `what` in the output.
void expect_failure(const testing::CommandResult& r, int code, const std::string& what) {
    EXPECT_EQ(r.exit_code, code) << r.output;
    EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
}

TEST(LoraTrainConfig, HuggingFaceTrainerDefaultsAndLoraSections) {
    const lora::LoraTrainConfig c = lora::load_lora_train_config("", {});
    EXPECT_FLOAT_EQ(c.lr, 2e-4f);
    EXPECT_EQ(c.max_steps, 500);
    EXPECT_EQ(c.warmup(), 25);  // ceil(5 % of 500)
    EXPECT_EQ(c.min_lr_ratio, 0.0f);
    EXPECT_FLOAT_EQ(c.adamw.beta2, 0.999f);
    EXPECT_EQ(c.adamw.weight_decay, 0.0f);
    EXPECT_EQ(c.batch_size, 4);
    EXPECT_EQ(c.seq_len, 512);
    EXPECT_EQ(c.grad_clip, 1.0f);
    const auto set = lora::load_lora_train_config(
        "", {"train.max_steps=30", "train.total_batch_tokens=4096", "checkpoint.every=10"});
    EXPECT_EQ(set.warmup(), 2);  // ceil(1.5)
    EXPECT_EQ(set.grad_accum_steps(), 2);
    EXPECT_EQ(set.checkpoint_every, 10);
    for (const char* bad : {"model.n_layer=2", "data.train=x", "eval.val_every=5"}) {
        try {
            lora::load_lora_train_config("", {bad});
            ADD_FAILURE() << bad;
        } catch (const UsageError& e) {
            EXPECT_NE(std::string(e.what()).find("LoRA runs have no"), std::string::npos)
                << e.what();
        }
    }
    EXPECT_THROW(lora::load_lora_train_config("", {"train.seq_len=1"}), UsageError);
    EXPECT_THROW(lora::load_lora_train_config("", {"train.bogus=1"}), UsageError);
}

// The adapter has the tensors and adapter_config.json keys PEFT writes for the same targets and
// rank, and eval, generate and logits run it.
TEST(LoraTrain, WritesThePeftAdapterThatEvalAndGenerateRun) {
    TempDir tmp;
    const fs::path model = testing::hf_model_with_tokenizer(tmp.path(), "olmoe");
    const fs::path data = write_conversations(tmp / "chat.jsonl", 2);
    const fs::path out = tmp / "run";
    const auto r =
        run_command(lora_run(model, data, out, "r=4,alpha=8,targets=q_proj,o_proj,v_proj,k_proj",
                             "--set train.max_steps=3 --set train.lr=1e-2"));
    ASSERT_EQ(r.exit_code, 0) << r.output;

    const fs::path fixture = source() / "tests/fixtures/peft/olmoe_attention";
    const SafetensorsFile want = SafetensorsFile::open(fixture / "adapter_model.safetensors");
    const SafetensorsFile got = SafetensorsFile::open(out / "adapter/adapter_model.safetensors");
    std::map<std::string, std::vector<int64_t>> want_shapes, got_shapes;
    for (const TensorInfo& t : want.tensors()) want_shapes[t.name] = t.shape;
    for (const TensorInfo& t : got.tensors()) {
        got_shapes[t.name] = t.shape;
        EXPECT_EQ(t.dtype, DType::F32) << t.name;
    }
    EXPECT_EQ(got_shapes, want_shapes);

    const auto want_config = nlohmann::json::parse(read_file(fixture / "adapter_config.json"));
    const auto got_config = nlohmann::json::parse(read_file(out / "adapter/adapter_config.json"));
    for (const auto& [key, value] : got_config.items()) {
        EXPECT_TRUE(want_config.contains(key)) << key << ": a key PEFT does not write";
    }
    for (const char* key : {"peft_type", "r", "lora_alpha", "use_rslora", "use_dora", "bias"}) {
        EXPECT_EQ(got_config[key], want_config[key]) << key;
    }
    const auto targets = [](const nlohmann::json& j) {
        return j["target_modules"].get<std::set<std::string>>();
    };
    EXPECT_EQ(targets(got_config), targets(want_config));
    EXPECT_EQ(got_config["base_model_name_or_path"], model.string());
    EXPECT_EQ(got_config["task_type"], "CAUSAL_LM");

    // The run folder: its config, a log with steps 1…3, the last checkpoint, parent.json.
    const auto config = nlohmann::json::parse(read_file(out / "config.json"));
    EXPECT_EQ(config["lora"]["r"], 4);
    EXPECT_EQ(config["base"]["model"], model.string());
    EXPECT_TRUE(lora::is_lora_run(out));
    const auto losses = logged_losses(out);
    ASSERT_EQ(losses.size(), 3u);
    EXPECT_EQ(losses.begin()->first, 1);
    EXPECT_TRUE(fs::exists(out / "checkpoints/step_00000003/adapter_model.safetensors"));
    EXPECT_TRUE(fs::exists(out / "checkpoints/step_00000003/optimizer.safetensors"));
    EXPECT_TRUE(fs::exists(out / "parent.json"));

    const auto adapter = hf::read_lora_adapter(out / "adapter");
    EXPECT_EQ(adapter.modules.size(), 8u);  // 4 projections × 2 layers
    double b_size = 0.0;
    for (const auto& m : adapter.modules) {
        for (float v : m.b) b_size += std::abs(v);
    }
    EXPECT_GT(b_size, 0.0) << "B starts at zero and must have moved";

    testing::write_text_file(tmp / "text.txt", "the cat ate the bead and the hat");
    const auto eval = run_command(bin() + " eval --model " + model.string() + " --adapter " +
                                  (out / "adapter").string() + " --task perplexity --data " +
                                  (tmp / "text.txt").string() + " --no-energy -q");
    EXPECT_EQ(eval.exit_code, 0) << eval.output;
    const auto generate =
        run_command(bin() + " generate --model " + model.string() + " --adapter " +
                    (out / "adapter").string() + " -p 'the' -n 4 --no-energy");
    EXPECT_EQ(generate.exit_code, 0) << generate.output;
    // A checkpoint folder is an adapter folder too.
    const auto logits =
        run_command(bin() + " logits --model " + model.string() + " --adapter " +
                    (out / "checkpoints/step_00000003").string() + " --ids 1,16,6 --json");
    EXPECT_EQ(logits.exit_code, 0) << logits.output;
    // The run folder stands for its adapter on its base: the same logits as base + adapter,
    // and bench measures it beside the base.
    const auto run_logits =
        run_command(bin() + " logits --model " + out.string() + " --ids 1,16,6 --json");
    const auto adapter_logits =
        run_command(bin() + " logits --model " + model.string() + " --adapter " +
                    (out / "adapter").string() + " --ids 1,16,6 --json");
    EXPECT_EQ(run_logits.exit_code, 0) << run_logits.output;
    EXPECT_EQ(run_logits.output, adapter_logits.output);
    const auto base_logits =
        run_command(bin() + " logits --model " + model.string() + " --ids 1,16,6 --json");
    EXPECT_NE(run_logits.output, base_logits.output) << "the adapter changes the logits";
    const auto bench =
        run_command(bin() + " bench -q --no-energy --baseline " + model.string() + " --model " +
                    out.string() + " --prompt-tokens 4 --new-tokens 3 --batch 1 --repeats 1 -o " +
                    (tmp / "bench").string() + " 2>&1");
    ASSERT_EQ(bench.exit_code, 0) << bench.output;
    const std::string rows = testing::read_text_file(tmp / "bench/bench.jsonl");
    EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), 2) << rows;
    EXPECT_EQ(rows.find("\"status\":\"failed"), std::string::npos) << rows;
}

// 6 steps straight, and 3 steps then 3 more after a stop: the same adapters bit for bit and the
// same losses, with dropout, gradient accumulation and epochs wrapping around (the data has 5
// sequences). --merge writes what merge-adapter writes from the adapter.
TEST(LoraTrain, ResumesBitExactlyAndMerges) {
    TempDir tmp;
    const fs::path model = testing::hf_model_with_tokenizer(tmp.path(), "olmoe");
    const fs::path data = write_conversations(tmp / "chat.jsonl", 2);
    const std::string spec = "r=2,alpha=4,dropout=0.1,targets=q_proj,v_proj,gate,up_proj";
    const std::string settings =
        "--set train.max_steps=6 --set train.lr=5e-3 --set train.total_batch_tokens=64 "
        "--set checkpoint.every=2 --set checkpoint.keep=2 --merge";
    const fs::path straight = tmp / "straight", resumed = tmp / "resumed";
    const auto a = run_command(lora_run(model, data, straight, spec, settings));
    ASSERT_EQ(a.exit_code, 0) << a.output;
    const auto b1 = run_command(lora_run(model, data, resumed, spec, settings + " --stop-at 3"));
    ASSERT_EQ(b1.exit_code, 0) << b1.output;
    EXPECT_FALSE(fs::exists(resumed / "adapter"));
    EXPECT_TRUE(fs::exists(resumed / "checkpoints/step_00000003"));
    const auto b2 = run_command(lora_run(model, data, resumed, spec, settings));
    ASSERT_EQ(b2.exit_code, 0) << b2.output;

    EXPECT_EQ(read_file(straight / "adapter/adapter_model.safetensors"),
              read_file(resumed / "adapter/adapter_model.safetensors"));
    EXPECT_EQ(read_file(straight / "adapter/adapter_config.json"),
              read_file(resumed / "adapter/adapter_config.json"));
    const auto losses = logged_losses(straight);
    EXPECT_EQ(losses.size(), 6u);
    EXPECT_EQ(logged_losses(resumed), losses);
    // checkpoint.keep = 2: steps 4 and 6 remain.
    std::set<std::string> saves;
    for (const auto& e : fs::directory_iterator(straight / "checkpoints")) {
        if (e.is_directory()) saves.insert(e.path().filename().string());
    }
    EXPECT_EQ(saves, (std::set<std::string>{"step_00000004", "step_00000006"}));

    // OUT/merged equals merging OUT/adapter into the base.
    const fs::path reference = tmp / "reference";
    hf::write_merged_model(model, hf::read_lora_adapter(straight / "adapter"), reference, {});
    std::set<std::string> files;
    for (const auto& e : fs::directory_iterator(reference)) {
        files.insert(e.path().filename().string());
        EXPECT_EQ(read_file(e.path()), read_file(straight / "merged" / e.path().filename()))
            << e.path().filename();
    }
    EXPECT_TRUE(files.count("model.safetensors") || files.count("model.safetensors.index.json"));
    std::set<std::string> merged_files;
    for (const auto& e : fs::directory_iterator(straight / "merged"))
        merged_files.insert(e.path().filename().string());
    EXPECT_EQ(merged_files, files);
}

// Healing: 30 steps on a small repetitive instruction file lower the loss clearly.
// MoEITS's pipeline on the tiny OLMoE: simplify (5 → 3 experts per layer), then heal with
// LoRA; the healed model's loss on the healing data falls well below the pruned model's.
TEST(LoraTrain, HealsAPrunedModel) {
    TempDir tmp;
    const fs::path model = testing::hf_model_with_tokenizer(tmp.path(), "olmoe");
    const fs::path pruned = tmp / "pruned";
    const auto simplify = run_command(bin() + " simplify --model " + model.string() +
                                      " --keep 3 --out " + pruned.string());
    ASSERT_EQ(simplify.exit_code, 0) << simplify.output;
    const fs::path data = write_conversations(tmp / "chat.jsonl", 4);
    const fs::path out = tmp / "run";
    const auto r = run_command(
        lora_run(pruned, data, out, "r=8,alpha=16,targets=all-linear",
                 "--set train.max_steps=30 --set train.lr=2e-2 --set train.batch_size=4"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto losses = logged_losses(out);
    ASSERT_EQ(losses.size(), 30u);
    double first = 0.0, last = 0.0;
    for (int64_t s = 1; s <= 3; ++s) first += losses.at(s) / 3;
    for (int64_t s = 28; s <= 30; ++s) last += losses.at(s) / 3;
    EXPECT_LT(last, 0.6 * first) << "first steps " << first << ", last steps " << last;
    // The healing run's report shows its losses like any training run's.
    const auto report =
        run_command(bin() + " report " + out.string() + " -o " + (tmp / "report.html").string());
    ASSERT_EQ(report.exit_code, 0) << report.output;
    EXPECT_NE(testing::read_text_file(tmp / "report.html").find("Training curves"),
              std::string::npos);
}

TEST(LoraTrain, RefusesBadInputByName) {
    TempDir tmp;
    const fs::path model = testing::hf_model_with_tokenizer(tmp.path(), "olmoe");
    const fs::path data = write_conversations(tmp / "chat.jsonl", 1);
    const fs::path out = tmp / "run";
    const std::string steps = "--set train.max_steps=2";

    // OLMoE has no shared expert; q_proj is 16 × 16.
    expect_failure(run_command(lora_run(model, data, out, "r=4,targets=shared_expert", steps)), 1,
                   "'shared_expert' matches no module");
    expect_failure(run_command(lora_run(model, data, out, "r=64,targets=q_proj", steps)), 1,
                   "r=64 is larger than");
    testing::write_text_file(
        tmp / "robot.jsonl",
        R"({"conversations": [{"from": "human", "value": "a"}, {"from": "robot", "value": "b"}]})"
        "\n");
    expect_failure(
        run_command(lora_run(model, tmp / "robot.jsonl", out, "r=4,targets=q_proj", steps)), 1,
        "\"robot\"");
    expect_failure(run_command(lora_run(source() / "tests/fixtures/lm-eval/nano_switch", data, out,
                                        "r=4,targets=q_proj", steps)),
                   2, "LoRA is for Hugging Face models");
    expect_failure(run_command(lora_run(model, data, out, "r=4", steps)), 2, "no targets");
    expect_failure(
        run_command(lora_run(model, data, out, "r=4,targets=q_proj", "--set model.n_layer=2")), 2,
        "--set model.n_layer=2");
    expect_failure(run_command(lora_run(model, data, out, "r=4,targets=q_proj",
                                        "--data-dir " + tmp.path().string())),
                   2, "--data-dir is for full training");
    expect_failure(run_command(bin() + " train --data " + data.string() + " -q --out " +
                               (tmp / "full").string()),
                   2, "--data is for LoRA runs");
    expect_failure(run_command(bin() + " train --lora r=4,targets=q_proj --data " + data.string() +
                               " -q --out " + (tmp / "nobase").string()),
                   2, "--init-from");

    // Changed settings on resume are refused by name; allowed ones pass.
    const std::string spec = "r=2,targets=q_proj";
    ASSERT_EQ(run_command(lora_run(model, data, out, spec, steps + " --stop-at 1")).exit_code, 0);
    expect_failure(run_command(lora_run(model, data, out, spec, steps + " --set train.lr=1e-3")), 2,
                   "train.lr was 0.0002, now 0.001");
    expect_failure(run_command(lora_run(model, data, out, "r=4,targets=q_proj", steps)), 2,
                   "lora.r was 2, now 4");
    expect_failure(run_command(lora_run(model, data, out, spec, steps + " --template chatml")), 2,
                   "data.template was");
    // The full trainer does not take over a LoRA run folder.
    expect_failure(run_command(bin() + " train -q --out " + out.string()), 2, "holds a LoRA run");
    const auto allowed = run_command(lora_run(model, data, out, spec,
                                              steps + " --set train.lr=1e-3 "
                                                      "--resume-with-changes train.lr"));
    EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
    EXPECT_TRUE(fs::exists(out / "adapter/adapter_model.safetensors"));
}

// --adapter trains an existing adapter further (the PEFT fixture's settings) and writes it back
// with the same modules.
TEST(LoraTrain, ContinuesAnExistingAdapter) {
    TempDir tmp;
    const fs::path model = testing::hf_model_with_tokenizer(tmp.path(), "olmoe");
    const fs::path data = write_conversations(tmp / "chat.jsonl", 1);
    const fs::path fixture = source() / "tests/fixtures/peft/olmoe_attention";
    const fs::path out = tmp / "run";
    const auto r =
        run_command(bin() + " train --init-from " + model.string() + " --adapter " +
                    fixture.string() + " --data " + data.string() + " --out " + out.string() +
                    " --set train.seq_len=16 --set train.batch_size=2 --set "
                    "train.max_steps=2 -q --no-energy");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto before = hf::read_lora_adapter(fixture);
    const auto after = hf::read_lora_adapter(out / "adapter");
    ASSERT_EQ(after.modules.size(), before.modules.size());
    bool moved = false;
    for (size_t i = 0; i < before.modules.size(); ++i) {
        EXPECT_EQ(after.modules[i].module, before.modules[i].module);
        EXPECT_EQ(after.modules[i].scale, before.modules[i].scale);
        moved = moved || after.modules[i].b != before.modules[i].b;
    }
    EXPECT_TRUE(moved);
    expect_failure(run_command(bin() + " train --init-from " + model.string() + " --adapter " +
                               fixture.string() + " --lora r=4,targets=q_proj --data " +
                               data.string() + " -q --out " + (tmp / "both").string()),
                   2, "drop --lora");
}

}  // namespace
}  // namespace greenmoe

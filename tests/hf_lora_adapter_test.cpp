// PEFT LoRA adapters on Hugging Face models: adapters written by PEFT itself
// (tools/fixtures/make_peft_fixtures.py) give PEFT's float64 logits, merged weights equal
// W + scale · B · A, and adapters greenmoe cannot apply are refused by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/core/half.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/hf/lora_adapter.h"
#include "greenmoe/hf/lora_merge.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/io/safetensors_model.h"
#include "test_support.h"

namespace greenmoe::hf {
namespace {

namespace fs = std::filesystem;
using testing::error_message;
using testing::TempDir;

fs::path source() {
    return GREENMOE_SOURCE_DIR;
}
fs::path peft_fixture(const std::string& name) {
    return source() / "tests/fixtures/peft" / name;
}

double max_abs_diff(const std::vector<float>& got, const nlohmann::json& want) {
    double worst = 0;
    size_t i = 0;
    for (const auto& row : want) {
        for (const auto& v : row) worst = std::max(worst, std::fabs(got[i++] - v.get<double>()));
    }
    EXPECT_EQ(i, got.size());
    return worst;
}

class PeftAdapter : public ::testing::TestWithParam<const char*> {};

TEST_P(PeftAdapter, LogitsEqualPeftsFloat64) {
    const fs::path dir = peft_fixture(GetParam());
    const auto reference = nlohmann::json::parse(read_file(dir / "logits.json"));
    const fs::path base_dir = source() / reference["base"].get<std::string>();
    const auto base_logits = nlohmann::json::parse(read_file(base_dir / "logits.json"));
    HfModel model = HfModel::load(base_dir);
    const LoraAdapter adapter = read_lora_adapter(dir);
    model.apply_lora(adapter);
    for (size_t s = 0; s < reference["sequences"].size(); ++s) {
        const auto ids = reference["sequences"][s].get<std::vector<int32_t>>();
        const std::vector<float> got = model.logits(ids);
        EXPECT_LE(max_abs_diff(got, reference["logits"][s]), 1e-4) << "sequence " << s;
        // The adapter changes them: this is not the base model's answer.
        EXPECT_GT(max_abs_diff(got, base_logits["logits"][s]), 1e-3) << "sequence " << s;
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PeftAdapter,
                         ::testing::Values("olmoe_attention", "qwen2_moe_bf16_rslora"));

TEST(PeftAdapterConfig, ScalesRanksAndModules) {
    const LoraAdapter plain = read_lora_adapter(peft_fixture("olmoe_attention"));
    ASSERT_EQ(plain.modules.size(), 8u);  // q, k, v, o in 2 layers
    EXPECT_EQ(plain.modules[0].module, "model.layers.0.self_attn.k_proj");
    EXPECT_EQ(plain.modules[0].rank, 4);
    EXPECT_DOUBLE_EQ(plain.modules[0].scale, 8.0 / 4.0);
    const LoraAdapter rs = read_lora_adapter(peft_fixture("qwen2_moe_bf16_rslora"));
    EXPECT_DOUBLE_EQ(rs.modules[0].scale, 3.0 / std::sqrt(2.0));
    EXPECT_EQ(rs.base_model, "tests/fixtures/hf-models/qwen2_moe_bf16");
}

// W' = W + scale · B · A, against a double computation, for every targeted matrix (the bf16
// base: the widened weights are exact).
TEST(PeftAdapterMerge, MergedEqualsBasePlusScaledProduct) {
    const LoraAdapter adapter = read_lora_adapter(peft_fixture("qwen2_moe_bf16_rslora"));
    const HfModel model = HfModel::load(source() / adapter.base_model);
    for (const LoraModule& m : adapter.modules) {
        const Mat& base = find_lora_target(model.weights(), adapter, m);
        const std::vector<float> merged = merged_matrix(base, m);
        std::vector<float> row(static_cast<size_t>(base.cols));
        double worst = 0;
        for (int64_t r = 0; r < base.rows; ++r) {
            base.read_row(r, row.data());
            for (int64_t c = 0; c < base.cols; ++c) {
                double delta = 0;
                for (int64_t k = 0; k < m.rank; ++k) {
                    delta += double(m.b[static_cast<size_t>(r * m.rank + k)]) *
                             m.a[static_cast<size_t>(k * m.in + c)];
                }
                const double want = row[static_cast<size_t>(c)] + m.scale * delta;
                worst = std::max(worst,
                                 std::fabs(merged[static_cast<size_t>(r * base.cols + c)] - want) /
                                     (1 + std::fabs(want)));
            }
        }
        EXPECT_LE(worst, 1e-6) << m.module;
    }
}

// A copy of a fixture adapter with its config edited.
fs::path edited_copy(const TempDir& tmp, const std::string& name,
                     const std::function<void(nlohmann::json&)>& edit) {
    const fs::path dir = tmp / name;
    fs::create_directories(dir);
    fs::copy_file(peft_fixture(name) / "adapter_model.safetensors",
                  dir / "adapter_model.safetensors");
    auto config = nlohmann::json::parse(read_file(peft_fixture(name) / "adapter_config.json"));
    edit(config);
    testing::write_text_file(dir / "adapter_config.json", config.dump());
    return dir;
}

TEST(PeftAdapterErrors, RefusedSettingsAreNamed) {
    TempDir tmp;
    const auto message = [&](const std::function<void(nlohmann::json&)>& edit) {
        const fs::path dir = edited_copy(tmp, "olmoe_attention", edit);
        const std::string msg = error_message([&] { read_lora_adapter(dir); });
        fs::remove_all(dir);
        return msg;
    };
    EXPECT_NE(message([](auto& c) { c["use_dora"] = true; }).find("'use_dora'"), std::string::npos);
    EXPECT_NE(message([](auto& c) { c["peft_type"] = "IA3"; }).find("expected LORA"),
              std::string::npos);
    EXPECT_NE(
        message([](auto& c) { c["modules_to_save"] = {"lm_head"}; }).find("'modules_to_save'"),
        std::string::npos);
    EXPECT_NE(message([](auto& c) {
                  c["target_parameters"] = {"mlp.experts.gate_up_proj"};
              }).find("'target_parameters'"),
              std::string::npos);
    EXPECT_NE(message([](auto& c) { c["r"] = 8; }).find("has rank 4, the adapter config says 8"),
              std::string::npos);
    // rank_pattern applies by module-name suffix.
    const std::string pattern = message([](auto& c) {
        c["rank_pattern"] = {{"self_attn.q_proj", 2}};
    });
    EXPECT_NE(pattern.find("q_proj.lora_A.weight' has rank 4, the adapter config says 2"),
              std::string::npos)
        << pattern;
    const std::string missing = error_message([&] { read_lora_adapter(tmp.path()); });
    EXPECT_NE(missing.find("no adapter_config.json"), std::string::npos) << missing;
}

TEST(PeftAdapterErrors, ModulesTheModelLacksOrShapesThatDiffer) {
    // Qwen2-MoE's adapter on OLMoE, which has no shared expert.
    HfModel olmoe_model = HfModel::load(source() / "tests/fixtures/hf-models/olmoe");
    const LoraAdapter qwen = read_lora_adapter(peft_fixture("qwen2_moe_bf16_rslora"));
    std::string msg = error_message([&] { olmoe_model.apply_lora(qwen); });
    EXPECT_NE(msg.find("target module 'model.layers.0.mlp.shared_expert."), std::string::npos)
        << msg;
    // An update of another shape: k_proj's [8, 16] aimed at o_proj [16, 16].
    LoraAdapter moved = read_lora_adapter(peft_fixture("olmoe_attention"));
    ASSERT_EQ(moved.modules[0].module, "model.layers.0.self_attn.k_proj");
    moved.modules[0].module = "model.layers.0.self_attn.o_proj";
    HfModel model = HfModel::load(source() / "tests/fixtures/hf-models/olmoe");
    msg = error_message([&] { model.apply_lora(moved); });
    EXPECT_NE(msg.find("the update of 'model.layers.0.self_attn.o_proj' is [8, 16], the model's "
                       "'model.layers.0.self_attn.o_proj.weight' is [16, 16]"),
              std::string::npos)
        << msg;
    // A lora_A without its lora_B.
    TempDir tmp;
    const SafetensorsFile file =
        SafetensorsFile::open(peft_fixture("olmoe_attention") / "adapter_model.safetensors");
    std::vector<TensorToWrite> keep;
    for (const TensorInfo& t : file.tensors()) {
        if (t.name == "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight") continue;
        keep.push_back({t.name, t.dtype, t.shape, file.data(t)});
    }
    fs::copy_file(peft_fixture("olmoe_attention") / "adapter_config.json",
                  tmp / "adapter_config.json");
    write_safetensors(tmp / "adapter_model.safetensors", keep);
    msg = error_message([&] { read_lora_adapter(tmp.path()); });
    EXPECT_NE(msg.find("module 'model.layers.1.self_attn.v_proj' has lora_A but no lora_B"),
              std::string::npos)
        << msg;
}

}  // namespace
}  // namespace greenmoe::hf

namespace greenmoe::hf {
namespace {

// `greenmoe logits --adapter`: PEFT's logits from the command line; an adapter on a greenmoe
// model is a usage error.
TEST(PeftAdapterCli, LogitsWithAdapterAndMisuse) {
    const fs::path dir = peft_fixture("olmoe_attention");
    const auto reference = nlohmann::json::parse(read_file(dir / "logits.json"));
    const auto ids = reference["sequences"][0].get<std::vector<int32_t>>();
    std::string id_list;
    for (const int32_t id : ids) id_list += (id_list.empty() ? "" : ",") + std::to_string(id);
    const auto r = testing::run_command(testing::greenmoe_binary().string() + " logits --model " +
                                        (source() / reference["base"].get<std::string>()).string() +
                                        " --adapter " + dir.string() + " --ids " + id_list +
                                        " --json 2>/dev/null");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto got = nlohmann::json::parse(r.output)["logits"];
    std::vector<float> flat;
    for (const auto& row : got) {
        for (const auto& v : row) flat.push_back(v.get<float>());
    }
    EXPECT_LE(max_abs_diff(flat, reference["logits"][0]), 1e-4);

    // The adapter folder alone stands for base + adapter (its base_model_name_or_path is
    // relative to the repository, where the command runs).
    const auto alone = testing::run_command("cd " + source().string() + " && " +
                                            testing::greenmoe_binary().string() +
                                            " logits --model tests/fixtures/peft/olmoe_attention "
                                            "--json --ids " +
                                            id_list + " 2>/dev/null");
    ASSERT_EQ(alone.exit_code, 0) << alone.output;
    EXPECT_EQ(nlohmann::json::parse(alone.output)["logits"], got);

    const auto misuse =
        testing::run_command(testing::greenmoe_binary().string() + " eval --checkpoint " +
                             (source() / "tests/fixtures/lm-eval/nano_switch").string() +
                             " --adapter " + dir.string() + " --task val-loss --no-energy");
    EXPECT_EQ(misuse.exit_code, 2) << misuse.output;
    EXPECT_NE(misuse.output.find("LoRA adapters apply to Hugging Face models"), std::string::npos)
        << misuse.output;
}

}  // namespace
}  // namespace greenmoe::hf

namespace greenmoe::hf {
namespace {

// `greenmoe merge-adapter`: targeted weights are base + scale·B·A rounded once to the base's
// dtype, everything else byte for byte; an fp32 base merged gives PEFT's logits.
TEST(PeftAdapterMergeCli, WritesTheMergedFolder) {
    TempDir tmp;
    const std::string bin = testing::greenmoe_binary().string();
    for (const std::string name : {"qwen2_moe_bf16_rslora", "olmoe_attention"}) {
        SCOPED_TRACE(name);
        const LoraAdapter adapter = read_lora_adapter(peft_fixture(name));
        const fs::path base_dir = source() / adapter.base_model;
        const fs::path out = tmp / name;
        const auto r = testing::run_command(bin + " merge-adapter --model " + base_dir.string() +
                                            " --adapter " + peft_fixture(name).string() +
                                            " --out " + out.string());
        ASSERT_EQ(r.exit_code, 0) << r.output;
        const SafetensorsModel base = SafetensorsModel::open(base_dir);
        const SafetensorsModel merged = SafetensorsModel::open(out);
        ASSERT_EQ(merged.tensor_names(), base.tensor_names());
        const HfModel base_model = HfModel::load(base_dir);
        size_t changed = 0;
        for (const std::string& t : base.tensor_names()) {
            const auto want = base.bytes(t);
            const auto got = merged.bytes(t);
            ASSERT_EQ(got.size(), want.size()) << t;
            EXPECT_EQ(merged.get(t).dtype, base.get(t).dtype) << t;
            const LoraModule* m = nullptr;
            for (const LoraModule& x : adapter.modules) {
                if (x.module + ".weight" == t) m = &x;
            }
            if (m == nullptr) {
                EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin())) << t;
                continue;
            }
            ++changed;
            const Mat& target = find_lora_target(base_model.weights(), adapter, *m);
            const std::vector<float> values = merged_matrix(target, *m);
            const auto* stored = reinterpret_cast<const uint16_t*>(got.data());
            for (size_t i = 0; i < values.size(); ++i) {
                if (target.dtype == DType::BF16) {
                    ASSERT_EQ(stored[i], f32_to_bf16(values[i])) << t << " element " << i;
                } else {
                    ASSERT_EQ(reinterpret_cast<const float*>(got.data())[i], values[i]) << t;
                }
            }
        }
        EXPECT_EQ(changed, adapter.modules.size());
        if (name == "olmoe_attention") {
            const auto reference =
                nlohmann::json::parse(read_file(peft_fixture(name) / "logits.json"));
            const HfModel model = HfModel::load(out);
            const auto ids = reference["sequences"][1].get<std::vector<int32_t>>();
            EXPECT_LE(max_abs_diff(model.logits(ids), reference["logits"][1]), 1e-4);
        }
    }
    // The base folder itself is never written over.
    const auto into_base = testing::run_command(
        bin + " merge-adapter --model " + (source() / "tests/fixtures/hf-models/olmoe").string() +
        " --adapter " + peft_fixture("olmoe_attention").string() + " --out " +
        (source() / "tests/fixtures/hf-models/olmoe").string() + " --overwrite");
    EXPECT_NE(into_base.exit_code, 0) << into_base.output;
}

}  // namespace
}  // namespace greenmoe::hf

// Test models for the MoEITS tests: Hugging Face fixture folders and tiny greenmoe MoE
// checkpoints.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/gpt_weights.h"
#include "test_support.h"

namespace greenmoe::testing {

// <tmp>/<name>/{config.json, model.safetensors} from shared/data/hf-fixtures/<name>*.
inline std::filesystem::path hf_fixture_folder(const TempDir& tmp, const std::string& name) {
    namespace fs = std::filesystem;
    const fs::path src = shared_data() / "hf-fixtures";
    const fs::path dir = tmp / name;
    fs::create_directories(dir);
    fs::copy_file(src / (name + ".safetensors"), dir / "model.safetensors");
    fs::copy_file(src / (name + "_config.json"), dir / "config.json");
    fs::permissions(dir / "model.safetensors", fs::perms::owner_write, fs::perm_options::add);
    fs::permissions(dir / "config.json", fs::perms::owner_write, fs::perm_options::add);
    return dir;
}

// A Qwen2-MoE-shaped model built from the tiny Qwen3-MoE fixture: each layer gains a shared
// expert (shared_expert.*_proj, shared_expert_gate) and a router bias of one value per expert
// (mlp.gate.e_score_correction_bias, as DeepSeek-V3 has), to test that shared experts are
// left alone and every router tensor with a row per expert is sliced.
inline std::filesystem::path qwen2_moe_folder(const TempDir& tmp) {
    namespace fs = std::filesystem;
    const fs::path src = shared_data() / "hf-fixtures";
    const fs::path dir = tmp / "qwen2_moe";
    fs::create_directories(dir);
    const auto in = SafetensorsFile::open(src / "tiny_qwen3_moe.safetensors");
    std::vector<TensorToWrite> tensors;
    for (const auto& t : in.tensors()) tensors.push_back({t.name, t.dtype, t.shape, in.data(t)});
    std::vector<std::vector<float>> extra;
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (int l = 0; l < 2; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".mlp.";
        shapes.push_back({p + "shared_expert.gate_proj.weight", {6, 8}});
        shapes.push_back({p + "shared_expert.up_proj.weight", {6, 8}});
        shapes.push_back({p + "shared_expert.down_proj.weight", {8, 6}});
        shapes.push_back({p + "shared_expert_gate.weight", {1, 8}});
        shapes.push_back({p + "gate.e_score_correction_bias", {4}});
        // Qwen2 attention has q/k/v biases (and no q/k norms, left in as unread tensors).
        const std::string a = "model.layers." + std::to_string(l) + ".self_attn.";
        for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
            const int64_t rows = in.get(a + proj + ".weight").shape[0];
            shapes.push_back({a + proj + ".bias", {rows}});
        }
    }
    extra.reserve(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i) {
        int64_t n = 1;
        for (const int64_t d : shapes[i].second) n *= d;
        std::vector<float> v(static_cast<size_t>(n));
        for (size_t j = 0; j < v.size(); ++j) v[j] = 0.01f * float(i + 1) + 0.001f * float(j);
        extra.push_back(std::move(v));
        tensors.push_back({shapes[i].first, DType::F32, shapes[i].second, extra.back().data()});
    }
    write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
    nlohmann::json config =
        nlohmann::json::parse(read_text_file(src / "tiny_qwen3_moe_config.json"));
    config["model_type"] = "qwen2_moe";
    config["architectures"] = {"Qwen2MoeForCausalLM"};
    config["shared_expert_intermediate_size"] = 6;
    write_text_file(dir / "config.json", config.dump(1));
    return dir;
}

// A small greenmoe MoE model config (every block an MoE block of 4 experts).
inline GptConfig tiny_moe_config(const std::string& mlp) {
    GptConfig c;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 16;
    c.block_size = 16;
    c.vocab_size = 64;
    c.mlp = mlp;
    c.n_experts = 4;
    c.top_k = 2;
    c.expert_hidden = 24;
    c.moe_every = 1;
    return c;
}

// Writes a freshly initialised greenmoe model as greenmoe weights at `path`.
inline std::filesystem::path write_greenmoe_model(const std::filesystem::path& path,
                                                  const GptConfig& config, uint64_t seed = 7) {
    GptModel model(config, 1, 1);
    model.init_weights(seed);
    std::filesystem::create_directories(path.parent_path());
    save_gpt_weights(path, model);
    return path;
}

}  // namespace greenmoe::testing

// GPT weight files in greenmoe's and Hugging Face's layouts (see gpt_weights.h).
#include "greenmoe/model/gpt_weights.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <set>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/core/shape_text.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/safetensors.h"

namespace greenmoe {

namespace {

constexpr const char* kConfigKey = "greenmoe.model";

// Hugging Face stores these Linear weights as Conv1D, i.e. transposed: [in, out].
bool is_conv1d_weight(const std::string& hf_name) {
    return hf_name.ends_with("attn.c_attn.weight") || hf_name.ends_with("attn.c_proj.weight") ||
           hf_name.ends_with("mlp.c_fc.weight") || hf_name.ends_with("mlp.c_proj.weight");
}

std::string to_hf_name(const std::string& name) {
    const std::string prefix = "transformer.";
    return name.starts_with(prefix) ? name.substr(prefix.size()) : name;
}

void transpose(float* out, const float* in, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
    }
}

std::filesystem::path hf_weights_file(const std::filesystem::path& path) {
    if (std::filesystem::is_directory(path)) {
        const auto file = path / "model.safetensors";
        check(std::filesystem::exists(file), "{}: no model.safetensors in this folder",
              path.string());
        return file;
    }
    check(std::filesystem::exists(path), "{}: no such file or folder", path.string());
    return path;
}

}  // namespace

void save_gpt_weights(const std::filesystem::path& path, const GptModel& model,
                      std::map<std::string, std::string> metadata) {
    std::vector<TensorToWrite> tensors;
    for (const ParamSpec& s : model.layout().specs()) {
        tensors.push_back({s.name, DType::F32, s.shape, model.params() + s.offset});
    }
    metadata[kConfigKey] = nlohmann::json(model.config()).dump();
    metadata["format"] = "greenmoe";
    write_safetensors(path, tensors, metadata);
}

GptConfig read_gpt_weights_config(const std::filesystem::path& path) {
    const SafetensorsFile file = SafetensorsFile::open(path);
    auto it = file.metadata().find(kConfigKey);
    check(it != file.metadata().end(),
          "{}: not a greenmoe weights file (no '{}' metadata); for Hugging Face GPT-2 weights "
          "use --init-from with the model folder",
          path.string(), kConfigKey);
    const auto j = nlohmann::json::parse(it->second, nullptr, false);
    check(!j.is_discarded(), "{}: metadata '{}' is not valid JSON", path.string(), kConfigKey);
    GptConfig config;
    from_json(j, config);
    config.finalize();
    return config;
}

void load_gpt_weights(const std::filesystem::path& path, GptModel& model) {
    const SafetensorsFile file = SafetensorsFile::open(path);
    std::set<std::string> expected;
    for (const ParamSpec& s : model.layout().specs()) {
        expected.insert(s.name);
        check(file.find(s.name) != nullptr, "{}: tensor '{}' {} is missing", path.string(), s.name,
              shape_text(s.shape));
        file.read_f32_into(s.name, model.params() + s.offset, s.shape);
    }
    if (model.num_moe_layers() > 0 && file.find(kMoeBiasTensor) != nullptr) {
        expected.insert(kMoeBiasTensor);
        file.read_f32_into(kMoeBiasTensor, model.moe_bias(), model.moe_bias_shape());
    }
    for (const TensorInfo& t : file.tensors()) {
        check(expected.count(t.name) == 1,
              "{}: unexpected tensor '{}' (the model config does not have it)", path.string(),
              t.name);
    }
}

GptConfig read_hf_gpt2_config(const std::filesystem::path& path) {
    const auto weights = hf_weights_file(path);
    const auto dir = std::filesystem::is_directory(path) ? path : path.parent_path();
    GptConfig config;
    const auto config_file = dir / "config.json";
    if (std::filesystem::exists(config_file)) {
        const auto j = nlohmann::json::parse(read_file(config_file), nullptr, false);
        check(!j.is_discarded() && j.is_object(), "{}: not a JSON object", config_file.string());
        auto get = [&](const char* key, int& out) {
            if (j.contains(key)) {
                check(j[key].is_number_integer(), "{}: '{}' must be an integer",
                      config_file.string(), key);
                out = j[key].get<int>();
                return true;
            }
            return false;
        };
        get("n_layer", config.n_layer);
        get("n_head", config.n_head);
        get("n_embd", config.n_embd);
        if (!get("n_positions", config.block_size)) get("n_ctx", config.block_size);
        get("vocab_size", config.vocab_size);
    } else {
        fail(
            "{}: no config.json beside the weights (GPT-2's n_head cannot be inferred from "
            "shapes)",
            weights.string());
    }
    config.padded_vocab_size = 0;
    config.finalize();
    return config;
}

void read_hf_gpt2_tensors(const SafetensorsFile& file, const std::string& prefix,
                          const GptModel& model, float* dst_block) {
    const GptConfig& cfg = model.config();
    for (const ParamSpec& s : model.layout().specs()) {
        const std::string hf = prefix + to_hf_name(s.name);
        check(file.find(hf) != nullptr, "{}: tensor '{}' is missing", file.path().string(), hf);
        float* dst = dst_block + s.offset;
        if (s.name == "transformer.wte.weight") {
            // HF stores the unpadded vocabulary; padded rows stay zero.
            std::memset(dst, 0, s.numel * sizeof(float));
            file.read_f32_into(hf, dst, {cfg.vocab_size, cfg.n_embd});
        } else if (is_conv1d_weight(hf)) {
            std::vector<float> tmp(s.numel);
            file.read_f32_into(hf, tmp.data(), {s.shape[1], s.shape[0]});
            transpose(dst, tmp.data(), s.shape[1], s.shape[0]);
        } else {
            file.read_f32_into(hf, dst, s.shape);
        }
    }
}

void load_hf_gpt2_weights(const std::filesystem::path& path, GptModel& model) {
    const auto weights = hf_weights_file(path);
    const SafetensorsFile file = SafetensorsFile::open(weights);
    const std::string prefix = file.find("wte.weight") ? "" : "transformer.";
    read_hf_gpt2_tensors(file, prefix, model, model.params());
    std::set<std::string> used;
    for (const ParamSpec& s : model.layout().specs()) used.insert(prefix + to_hf_name(s.name));
    for (const TensorInfo& t : file.tensors()) {
        const std::string& n = t.name;
        const bool buffer =
            n.ends_with(".attn.bias") || n.ends_with(".attn.masked_bias") || n == "lm_head.weight";
        check(used.count(n) || buffer, "{}: unexpected tensor '{}' for a GPT-2 of this config",
              weights.string(), n);
    }
}

void export_hf_gpt2(const std::filesystem::path& dir, const GptModel& model) {
    const GptConfig& cfg = model.config();
    check(!cfg.is_moe() && cfg.attn == "mha",
          "Hugging Face GPT-2 has no Mixture-of-Experts layers: this model (mlp '{}', attn "
          "'{}') can only be saved in greenmoe's format",
          cfg.mlp, cfg.attn);
    std::filesystem::create_directories(dir);
    std::vector<std::vector<float>> transposed;
    transposed.reserve(model.layout().specs().size());
    std::vector<TensorToWrite> tensors;
    for (const ParamSpec& s : model.layout().specs()) {
        const std::string hf = to_hf_name(s.name);
        const float* src = model.params() + s.offset;
        if (s.name == "transformer.wte.weight") {
            tensors.push_back({hf, DType::F32, {cfg.vocab_size, cfg.n_embd}, src});
        } else if (is_conv1d_weight(hf)) {
            transposed.emplace_back(s.numel);
            transpose(transposed.back().data(), src, s.shape[0], s.shape[1]);
            tensors.push_back({hf, DType::F32, {s.shape[1], s.shape[0]}, transposed.back().data()});
        } else {
            tensors.push_back({hf, DType::F32, s.shape, src});
        }
    }
    write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
    const nlohmann::json config = {
        {"architectures", {"GPT2LMHeadModel"}},
        {"model_type", "gpt2"},
        {"n_layer", cfg.n_layer},
        {"n_head", cfg.n_head},
        {"n_embd", cfg.n_embd},
        {"n_positions", cfg.block_size},
        {"n_ctx", cfg.block_size},
        {"vocab_size", cfg.vocab_size},
        {"activation_function", "gelu_new"},
        {"layer_norm_epsilon", 1e-5},
        {"n_inner", nullptr},
        {"resid_pdrop", 0.0},
        {"embd_pdrop", 0.0},
        {"attn_pdrop", 0.0},
        {"tie_word_embeddings", true},
        {"bos_token_id", 50256},
        {"eos_token_id", 50256},
    };
    write_file_atomic(dir / "config.json", config.dump(2) + "\n");
}

}  // namespace greenmoe

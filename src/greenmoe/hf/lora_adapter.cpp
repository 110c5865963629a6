// Reading PEFT LoRA adapters (see lora_adapter.h).
#include "greenmoe/hf/lora_adapter.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/core/shape_text.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/checkpoint_paths.h"
#include "greenmoe/io/safetensors.h"

namespace greenmoe::hf {

namespace fs = std::filesystem;

namespace {

// PEFT saves the wrapped model's names under this prefix.
constexpr std::string_view kPrefix = "base_model.model.";

// A key of rank_pattern / alpha_pattern applies to the module it names or ends.
bool pattern_matches(const std::string& key, const std::string& module) {
    if (module == key) return true;
    return module.size() > key.size() &&
           module.compare(module.size() - key.size(), key.size(), key) == 0 &&
           module[module.size() - key.size() - 1] == '.';
}

// A setting that must be absent, null, false, empty or equal to `allowed` (when given).
void refuse_setting(const nlohmann::json& config, const char* key, const std::string& file,
                    const char* what) {
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) return;
    const bool off = (it->is_boolean() && !it->get<bool>()) ||
                     ((it->is_array() || it->is_object()) && it->empty()) ||
                     (it->is_string() && (it->get<std::string>().empty() || *it == "none"));
    check(off, "{}: '{}' is {}: {} are not supported (greenmoe applies plain LoRA)", file, key,
          it->dump(), what);
}

// config[key] when it is a string (`fallback` when absent or null); Error for another type.
std::string string_setting(const nlohmann::json& config, const char* key, const char* fallback,
                           const std::string& file) {
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) return fallback;
    check(it->is_string(), "{}: '{}' should be a string, got {}", file, key, it->dump());
    return it->get<std::string>();
}

bool bool_setting(const nlohmann::json& config, const char* key, const std::string& file) {
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) return false;
    check(it->is_boolean(), "{}: '{}' should be true or false, got {}", file, key, it->dump());
    return it->get<bool>();
}

// rank_pattern / alpha_pattern: an object of numbers (absent or null: none).
nlohmann::json pattern_setting(const nlohmann::json& config, const char* key,
                               const std::string& file) {
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) return nlohmann::json::object();
    check(it->is_object(), "{}: '{}' should be an object of module names to numbers, got {}", file,
          key, it->dump());
    return *it;
}

double pattern_value(const nlohmann::json& patterns, const std::string& module, double fallback,
                     const std::string& file, const char* key) {
    if (!patterns.is_object()) return fallback;
    for (const auto& [k, v] : patterns.items()) {
        if (!pattern_matches(k, module)) continue;
        check(v.is_number(), "{}: '{}' of '{}' should be a number, got {}", file, key, k, v.dump());
        return v.get<double>();
    }
    return fallback;
}

}  // namespace

LoraAdapter read_lora_adapter(const fs::path& dir) {
    const fs::path config_path = dir / "adapter_config.json";
    const fs::path weights_path = dir / "adapter_model.safetensors";
    check(fs::is_regular_file(config_path),
          "--adapter {}: no adapter_config.json (expected a PEFT adapter folder)", dir.string());
    check(fs::is_regular_file(weights_path),
          "--adapter {}: no adapter_model.safetensors (adapter_model.bin, PyTorch's pickle, is "
          "not read: save the adapter with safe_serialization=True)",
          dir.string());
    const std::string file = config_path.string();
    const auto config = nlohmann::json::parse(read_file(config_path), nullptr, false);
    check(!config.is_discarded() && config.is_object(), "{}: not a JSON object", file);
    const std::string type = string_setting(config, "peft_type", "", file);
    check(type == "LORA", "{}: 'peft_type' is '{}', expected LORA", file, type);
    refuse_setting(config, "use_dora", file, "DoRA adapters");
    refuse_setting(config, "lora_bias", file, "LoRA biases");
    refuse_setting(config, "fan_in_fan_out", file, "transposed (Conv1D) targets");
    refuse_setting(config, "modules_to_save", file, "fully trained extra modules");
    refuse_setting(config, "target_parameters", file, "parameter (fused expert) targets");
    refuse_setting(config, "trainable_token_indices", file, "trainable tokens");
    refuse_setting(config, "layer_replication", file, "replicated layers");
    const std::string bias = string_setting(config, "bias", "none", file);
    check(bias == "none",
          "{}: 'bias' is '{}', expected \"none\" (trained biases are not supported)", file, bias);
    const auto r_it = config.find("r");
    check(r_it != config.end() && r_it->is_number_integer() && r_it->get<int64_t>() > 0,
          "{}: 'r' should be a positive integer, got {}", file,
          r_it == config.end() ? "nothing" : r_it->dump());
    const auto alpha_it = config.find("lora_alpha");
    check(alpha_it != config.end() && alpha_it->is_number(),
          "{}: 'lora_alpha' should be a number, got {}", file,
          alpha_it == config.end() ? "nothing" : alpha_it->dump());
    const auto r = r_it->get<int64_t>();
    const double alpha = alpha_it->get<double>();
    const bool rslora = bool_setting(config, "use_rslora", file);
    const nlohmann::json rank_pattern = pattern_setting(config, "rank_pattern", file);
    const nlohmann::json alpha_pattern = pattern_setting(config, "alpha_pattern", file);

    LoraAdapter adapter;
    adapter.dir = dir;
    adapter.base_model = string_setting(config, "base_model_name_or_path", "", file);
    const SafetensorsFile weights = SafetensorsFile::open(weights_path);
    // module → (A, B) tensor names, in file order of first appearance.
    std::vector<std::string> order;
    std::map<std::string, std::pair<std::string, std::string>> parts;
    for (const TensorInfo& t : weights.tensors()) {
        const std::string& name = t.name;
        check(name.rfind(kPrefix, 0) == 0, "{}: tensor '{}' does not start with '{}'",
              weights_path.string(), name, kPrefix);
        const bool is_a = name.ends_with(".lora_A.weight");
        const bool is_b = name.ends_with(".lora_B.weight");
        check(is_a || is_b,
              "{}: tensor '{}' is not a lora_A / lora_B weight (embedding adapters and other "
              "kinds are not supported)",
              weights_path.string(), name);
        const std::string module =
            name.substr(kPrefix.size(), name.size() - kPrefix.size() - 14);  // ".lora_A.weight"
        if (!parts.count(module)) order.push_back(module);
        (is_a ? parts[module].first : parts[module].second) = name;
    }
    check(!order.empty(), "{}: no LoRA tensors", weights_path.string());
    for (const std::string& module : order) {
        const auto& [a_name, b_name] = parts[module];
        check(!a_name.empty() && !b_name.empty(), "{}: module '{}' has {} but no {}",
              weights_path.string(), module, a_name.empty() ? "lora_B" : "lora_A",
              a_name.empty() ? "lora_A" : "lora_B");
        const TensorInfo& a = weights.get(a_name);
        const TensorInfo& b = weights.get(b_name);
        check(a.shape.size() == 2 && b.shape.size() == 2 && a.shape[0] == b.shape[1],
              "{}: '{}' {} and '{}' {} should be [r, in] and [out, r]", weights_path.string(),
              a_name, shape_text(a.shape), b_name, shape_text(b.shape));
        LoraModule m;
        m.module = module;
        m.rank = a.shape[0];
        m.in = a.shape[1];
        m.out = b.shape[0];
        const double rank = pattern_value(rank_pattern, module, double(r), file, "rank_pattern");
        check(double(m.rank) == rank, "{}: '{}' has rank {}, the adapter config says {}",
              weights_path.string(), a_name, m.rank, rank);
        const double a_alpha = pattern_value(alpha_pattern, module, alpha, file, "alpha_pattern");
        m.scale = rslora ? a_alpha / std::sqrt(double(m.rank)) : a_alpha / double(m.rank);
        m.a = weights.read_f32(a_name);
        m.b = weights.read_f32(b_name);
        adapter.modules.push_back(std::move(m));
    }
    return adapter;
}

bool is_lora_adapter_folder(const fs::path& dir) {
    return fs::is_regular_file(dir / "adapter_config.json") && !fs::exists(dir / "config.json");
}

std::optional<fs::path> find_lora_adapter(const fs::path& dir) {
    if (is_lora_adapter_folder(dir)) return dir;
    if (is_lora_adapter_folder(dir / "adapter")) return dir / "adapter";
    const std::optional<fs::path> latest = latest_checkpoint(dir);
    if (latest && is_lora_adapter_folder(*latest)) return latest;
    return std::nullopt;
}

fs::path lora_adapter_base(const fs::path& dir) {
    const fs::path config_path = dir / "adapter_config.json";
    const auto config = nlohmann::json::parse(read_file(config_path), nullptr, false);
    check(!config.is_discarded() && config.is_object(), "{}: not a JSON object",
          config_path.string());
    const std::string base =
        string_setting(config, "base_model_name_or_path", "", config_path.string());
    check(!base.empty() && fs::is_regular_file(fs::path(base) / "config.json"),
          "{}: the base model '{}' is not a model folder here; pass the base's folder with "
          "--model and this adapter with --adapter",
          config_path.string(), base);
    return base;
}

}  // namespace greenmoe::hf

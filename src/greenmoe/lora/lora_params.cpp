// The trainable LoRA adapters (see lora_params.h).
#include "greenmoe/lora/lora_params.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/safetensors.h"

namespace greenmoe::lora {

namespace {

constexpr const char* kLayerPrefix = "model.layers.";
constexpr const char* kWeightSuffix = ".weight";

// PEFT's module-name rule for a list of target_modules.
bool matches(const std::string& module, const std::string& target) {
    if (target == "all-linear") return true;
    return module == target || module.ends_with("." + target);
}

// The modules of the blocks that can carry an adapter: each whole 2-D weight under
// model.layers.* (embeddings and the LM head stay out, as PEFT's all-linear leaves them).
std::vector<std::pair<std::string, hf::Mat>> adaptable(const hf::ModelWeights& weights) {
    std::vector<std::pair<std::string, hf::Mat>> out;
    for (const auto& [name, mat] : weights.named) {
        if (!name.starts_with(kLayerPrefix) || !name.ends_with(kWeightSuffix)) continue;
        out.emplace_back(name.substr(0, name.size() - std::string(kWeightSuffix).size()), mat);
    }
    return out;
}

// "q_proj, k_proj, …": the last parts of the adaptable modules' names, each once.
std::string module_kinds(const std::vector<std::pair<std::string, hf::Mat>>& modules) {
    std::set<std::string> kinds;
    for (const auto& [name, mat] : modules) kinds.insert(name.substr(name.rfind('.') + 1));
    std::string out;
    for (const std::string& k : kinds) out += (out.empty() ? "" : ", ") + k;
    return out;
}

std::string peft_name(const std::string& module, char which) {
    return "base_model.model." + module + ".lora_" + which + ".weight";
}

}  // namespace

LoraParams LoraParams::create(const hf::ModelWeights& weights, const hf::ModelConfig& config,
                              const LoraSpec& spec, uint64_t seed) {
    const auto modules = adaptable(weights);
    LoraParams p;
    for (const std::string& target : spec.targets) {
        const bool found = std::any_of(modules.begin(), modules.end(),
                                       [&](const auto& m) { return matches(m.first, target); });
        if (found) continue;
        const bool outside = target == "lm_head" || target == "embed_tokens";
        fail(
            "--lora: target '{}' matches no module of this {} model ({}){}; its adaptable "
            "modules are: {}",
            target, config.model_type, config.source.string(),
            outside ? " (the embeddings and the LM head are not trained by LoRA here)"
                    : " (stacked expert tensors, as transformers 5 may save them, cannot be "
                      "targeted expert by expert)",
            module_kinds(modules));
    }
    for (const auto& [module, mat] : modules) {
        const bool wanted = std::any_of(spec.targets.begin(), spec.targets.end(),
                                        [&](const std::string& t) { return matches(module, t); });
        if (!wanted) continue;
        // A rank above both sides gives A and B more rows than the matrix has in either
        // direction: never meant.
        check(spec.rank <= std::max(mat.rows, mat.cols),
              "--lora: r={} is larger than '{}' ([{}, {}]) in both dimensions; use a smaller r "
              "or leave that module out of targets",
              spec.rank, module, mat.rows, mat.cols);
        LoraTarget t;
        t.module = module;
        t.base = mat;
        t.rank = spec.rank;
        t.in = mat.cols;
        t.out = mat.rows;
        t.scale = static_cast<float>(spec.scale());
        t.a = p.layout_.add(peft_name(module, 'A'), {t.rank, t.in});
        t.b = p.layout_.add(peft_name(module, 'B'), {t.out, t.rank});
        p.targets_.push_back(std::move(t));
    }
    p.values_.assign(p.layout_.total_floats(), 0.0f);
    p.grads_.assign(p.layout_.total_floats(), 0.0f);
    // PEFT's default init: A by kaiming_uniform_(a=√5), i.e. U(−1/√in, 1/√in); B zero, so the
    // adapted model starts equal to the base.
    for (size_t i = 0; i < p.targets_.size(); ++i) {
        const LoraTarget& t = p.targets_[i];
        const float bound = 1.0f / std::sqrt(static_cast<float>(t.in));
        const uint64_t key = rng_key(seed, 0x4c6f5241 /* "LoRA" */, i);
        float* a = p.values_.data() + t.a;
        for (int64_t j = 0; j < t.rank * t.in; ++j) {
            a[j] = (2.0f * rng_uniform(key, static_cast<uint64_t>(j)) - 1.0f) * bound;
        }
    }
    p.index_targets();
    return p;
}

LoraParams LoraParams::from_adapter(const hf::ModelWeights& weights,
                                    const hf::LoraAdapter& adapter) {
    const auto modules = adaptable(weights);
    LoraParams p;
    for (const hf::LoraModule& m : adapter.modules) {
        const auto it = std::find_if(modules.begin(), modules.end(),
                                     [&](const auto& x) { return x.first == m.module; });
        check(it != modules.end(),
              "{}: module '{}' is not one of the model's adaptable modules ({})",
              adapter.dir.string(), m.module, module_kinds(modules));
        check(it->second.rows == m.out && it->second.cols == m.in,
              "{}: the update of '{}' is [{}, {}], the model's weight is [{}, {}]",
              adapter.dir.string(), m.module, m.out, m.in, it->second.rows, it->second.cols);
        LoraTarget t;
        t.module = m.module;
        t.base = it->second;
        t.rank = m.rank;
        t.in = m.in;
        t.out = m.out;
        t.scale = static_cast<float>(m.scale);
        t.a = p.layout_.add(peft_name(m.module, 'A'), {t.rank, t.in});
        t.b = p.layout_.add(peft_name(m.module, 'B'), {t.out, t.rank});
        p.targets_.push_back(std::move(t));
    }
    p.values_.assign(p.layout_.total_floats(), 0.0f);
    p.grads_.assign(p.layout_.total_floats(), 0.0f);
    for (size_t i = 0; i < p.targets_.size(); ++i) {
        const LoraTarget& t = p.targets_[i];
        const hf::LoraModule& m = adapter.modules[i];
        std::copy(m.a.begin(), m.a.end(), p.values_.begin() + static_cast<ptrdiff_t>(t.a));
        std::copy(m.b.begin(), m.b.end(), p.values_.begin() + static_cast<ptrdiff_t>(t.b));
    }
    p.index_targets();
    return p;
}

void LoraParams::zero_grads() {
    std::fill(grads_.begin(), grads_.end(), 0.0f);
}

void LoraParams::index_targets() {
    by_address_.clear();
    for (size_t i = 0; i < targets_.size(); ++i) by_address_.emplace_back(targets_[i].base.data, i);
    std::sort(by_address_.begin(), by_address_.end());
}

const LoraTarget* LoraParams::find(const hf::Mat& m, int64_t* row0) const {
    if (m.empty()) return nullptr;
    // The target starting at or before m's first byte, closest to it.
    auto it =
        std::upper_bound(by_address_.begin(), by_address_.end(), m.data,
                         [](const std::byte* p, const auto& entry) { return p < entry.first; });
    if (it == by_address_.begin()) return nullptr;
    const LoraTarget& t = targets_[std::prev(it)->second];
    const hf::Mat& b = t.base;
    if (b.dtype != m.dtype || b.cols != m.cols) return nullptr;
    const size_t row_bytes = static_cast<size_t>(b.cols) * dtype_size(b.dtype);
    const auto offset = static_cast<size_t>(m.data - b.data);
    if (offset % row_bytes != 0) return nullptr;
    const auto first = static_cast<int64_t>(offset / row_bytes);
    if (first + m.rows > b.rows) return nullptr;
    *row0 = first;
    return &t;
}

hf::LoraAdapter LoraParams::to_adapter(const std::string& base_model) const {
    hf::LoraAdapter adapter;
    adapter.base_model = base_model;
    for (const LoraTarget& t : targets_) {
        hf::LoraModule m;
        m.module = t.module;
        m.rank = t.rank;
        m.in = t.in;
        m.out = t.out;
        m.scale = t.scale;
        const float* a = values_.data() + t.a;
        const float* b = values_.data() + t.b;
        m.a.assign(a, a + t.rank * t.in);
        m.b.assign(b, b + t.out * t.rank);
        adapter.modules.push_back(std::move(m));
    }
    return adapter;
}

void write_peft_adapter(const std::filesystem::path& dir, const LoraParams& params,
                        const LoraSpec& spec, const std::string& base_model) {
    std::filesystem::create_directories(dir);
    std::vector<TensorToWrite> tensors;
    for (const LoraTarget& t : params.targets()) {
        tensors.push_back(
            {peft_name(t.module, 'A'), DType::F32, {t.rank, t.in}, params.values() + t.a});
        tensors.push_back(
            {peft_name(t.module, 'B'), DType::F32, {t.out, t.rank}, params.values() + t.b});
    }
    // PEFT saves tensors sorted by name (safetensors' save_file orders them).
    std::sort(tensors.begin(), tensors.end(),
              [](const TensorToWrite& a, const TensorToWrite& b) { return a.name < b.name; });
    write_safetensors(dir / "adapter_model.safetensors", tensors, {{"format", "pt"}});

    nlohmann::ordered_json c;
    c["alpha_pattern"] = nlohmann::json::object();
    c["base_model_name_or_path"] = base_model;
    c["bias"] = "none";
    c["fan_in_fan_out"] = false;
    c["inference_mode"] = true;
    c["init_lora_weights"] = true;
    c["layers_pattern"] = nullptr;
    c["layers_to_transform"] = nullptr;
    // An integral alpha as PEFT writes it (8, not 8.0).
    if (spec.alpha == std::floor(spec.alpha) && std::abs(spec.alpha) < 1e15) {
        c["lora_alpha"] = static_cast<int64_t>(spec.alpha);
    } else {
        c["lora_alpha"] = spec.alpha;
    }
    c["lora_bias"] = false;
    c["lora_dropout"] = spec.dropout;
    c["modules_to_save"] = nullptr;
    c["peft_type"] = "LORA";
    c["r"] = spec.rank;
    c["rank_pattern"] = nlohmann::json::object();
    c["revision"] = nullptr;
    // The targets as given, each once: PEFT keeps the user's names.
    std::vector<std::string> targets;
    for (const std::string& t : spec.targets) {
        if (std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
    }
    if (targets == std::vector<std::string>{"all-linear"}) {
        c["target_modules"] = "all-linear";
    } else {
        c["target_modules"] = targets;
    }
    c["target_parameters"] = nlohmann::json::array();
    c["task_type"] = "CAUSAL_LM";
    c["use_dora"] = false;
    c["use_rslora"] = spec.rslora;
    write_file_atomic(dir / "adapter_config.json", c.dump(2) + "\n");
}

}  // namespace greenmoe::lora

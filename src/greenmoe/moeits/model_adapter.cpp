// Finding the MoE layers of Mixtral, Qwen-MoE, DeepSeek-MoE and greenmoe models (see
// model_adapter.h).
#include "greenmoe/moeits/model_adapter.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "greenmoe/core/error.h"
#include "greenmoe/core/half.h"
#include "greenmoe/core/shape_text.h"
#include "greenmoe/hf/hf_config.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/model/gpt_config.h"
#include "greenmoe/moeits/nmi.h"
#include "greenmoe/train/checkpoint.h"

namespace greenmoe::moeits {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr const char* kGreenmoeConfigKey = "greenmoe.model";

// What MoEITS adds to an architecture: the matrices it compares (spec §2), their weights,
// and the config key of the routed expert count that a pruned config rewrites. Where the
// tensors are, which layers have experts and how many, and top-k come from the engine's
// description (hf/architectures.cpp), so simplify prunes what the engine runs.
struct HfArchitecture {
    const char* model_type;
    const char* class_name;  // config.json "architectures"
    std::vector<std::string> kinds;
    std::vector<double> weights;
    const char* experts_key;
};

// Granite's input_linear stacks gate and up (0.2 + 0.4 of the Qwen/DeepSeek weights).
std::vector<double> fused_kind_weights() {
    return {0.6, 0.4};
}

const std::vector<HfArchitecture>& hf_architectures() {
    const std::vector<std::string> gate_up_down = {"gate_proj", "up_proj", "down_proj"};
    const hf::TensorNames granite;
    const std::vector<std::string> fused = {granite.fused_gate_up, granite.fused_down};
    static const std::vector<HfArchitecture> kArchs = {
        {"mixtral",
         "MixtralForCausalLM",
         {"w1", "w2", "w3"},
         mixtral_kind_weights(),
         "num_local_experts"},
        {"qwen2_moe", "Qwen2MoeForCausalLM", gate_up_down, qwen_deepseek_kind_weights(),
         "num_experts"},
        {"qwen3_moe", "Qwen3MoeForCausalLM", gate_up_down, qwen_deepseek_kind_weights(),
         "num_experts"},
        {"deepseek", "DeepseekForCausalLM", gate_up_down, qwen_deepseek_kind_weights(),
         "n_routed_experts"},
        {"deepseek_v2", "DeepseekV2ForCausalLM", gate_up_down, qwen_deepseek_kind_weights(),
         "n_routed_experts"},
        {"deepseek_v3", "DeepseekV3ForCausalLM", gate_up_down, qwen_deepseek_kind_weights(),
         "n_routed_experts"},
        {"olmoe", "OlmoeForCausalLM", gate_up_down, qwen_deepseek_kind_weights(), "num_experts"},
        {"granitemoe", "GraniteMoeForCausalLM", fused, fused_kind_weights(), "num_local_experts"},
        {"granitemoeshared", "GraniteMoeSharedForCausalLM", fused, fused_kind_weights(),
         "num_local_experts"},
    };
    return kArchs;
}

// Where one model keeps its MoE tensors and how many experts each layer routes to.
struct Layout {
    hf::TensorNames names;
    std::vector<int> experts;  // per layer (0: dense)
    int top_k = 0;
};

int json_int(const Json& config, const std::string& key, const std::string& where);

// DeepSeek-MoE (V1) runs in no engine yet; its tensors sit where DeepSeek-V2 keeps them.
Layout deepseek_v1_layout(const Json& config, const std::string& where, int num_layers) {
    Layout l;
    l.names.shared = "mlp.shared_experts.";
    l.top_k = json_int(config, "num_experts_per_tok", where);
    const int n = json_int(config, "n_routed_experts", where);
    const int dense_k = config.value("first_k_dense_replace", 0);
    const int freq = std::max(1, config.value("moe_layer_freq", 1));
    l.experts.assign(static_cast<size_t>(num_layers), 0);
    const auto by_block = config.find("num_experts_by_block");
    const bool listed = by_block != config.end() && !by_block->is_null();
    check(!listed || (by_block->is_array() && by_block->size() == size_t(num_layers)),
          "{}: num_experts_by_block must list one expert count per layer ({})", where, num_layers);
    for (int i = 0; i < num_layers; ++i) {
        const bool moe = i >= dense_k && i % freq == 0;
        l.experts[size_t(i)] = listed ? (*by_block)[size_t(i)].get<int>() : moe ? n : 0;
    }
    return l;
}

Layout layout_of(const Json& config, const fs::path& config_path, const std::string& model_type) {
    if (model_type == "deepseek") {
        return deepseek_v1_layout(config, config_path.string(),
                                  config.value("num_hidden_layers", 0));
    }
    const hf::ModelConfig m = hf::parse_model_config(config, config_path);
    Layout l;
    l.names = m.names;
    l.top_k = m.moe.top_k;
    for (const auto& layer : m.layers) l.experts.push_back(layer.n_experts);
    return l;
}

std::string supported_list() {
    std::string s;
    for (const auto& a : MoeModel::supported_architectures()) {
        s += s.empty() ? "" : ", ";
        s += a;
    }
    return s;
}

// Parses a non-negative decimal integer at s[pos..] up to `stop`; advances pos past `stop`.
bool parse_index(const std::string& s, size_t& pos, char stop, int& value) {
    const size_t begin = pos;
    int64_t v = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
        v = v * 10 + (s[pos] - '0');
        if (v > 1'000'000) return false;
        ++pos;
    }
    if (pos == begin || pos >= s.size() || s[pos] != stop) return false;
    // "01" is not the name transformers would give expert 1.
    if (pos - begin > 1 && s[begin] == '0') return false;
    ++pos;
    value = static_cast<int>(v);
    return true;
}

std::vector<double> resolve_weights(const std::vector<double>& given,
                                    const std::vector<double>& defaults,
                                    const std::vector<std::string>& kinds,
                                    const std::string& arch) {
    const std::vector<double>& w = given.empty() ? defaults : given;
    std::string names;
    for (const auto& k : kinds) {
        names += names.empty() ? "" : ", ";
        names += k;
    }
    usage_check(w.size() == kinds.size(), "--weights: {} has {} matrix kinds ({}), got {} weights",
                arch, kinds.size(), names, w.size());
    double sum = 0.0;
    for (const double v : w) {
        usage_check(std::isfinite(v) && v >= 0.0,
                    "--weights: weights must be finite and ≥ 0, got {}", v);
        sum += v;
    }
    usage_check(sum > 0.0, "--weights: at least one weight must be positive");
    std::vector<double> out(w.size());
    for (size_t i = 0; i < w.size(); ++i) out[i] = w[i] / sum;
    return out;
}

int json_int(const Json& config, const std::string& key, const std::string& where) {
    const auto it = config.find(key);
    check(it != config.end() && it->is_number_integer(),
          "{}: expected an integer \"{}\" (the number of {})", where, key,
          key == "num_experts_per_tok" ? "experts per token" : "experts");
    return it->get<int>();
}

std::string where_of(const SafetensorsModel& m) {
    return m.source().string();
}

}  // namespace

std::string MoeLayer::expert_tensor(int e, const std::string& suffix) const {
    return experts_prefix + std::to_string(e) + "." + suffix;
}

std::vector<std::string> MoeLayer::expert_tensor_names() const {
    if (stacked) return stacked_tensors;
    std::vector<std::string> names;
    for (int e = 0; e < n_experts; ++e) {
        for (const auto& s : expert_suffixes) names.push_back(expert_tensor(e, s));
    }
    return names;
}

std::vector<std::string> MoeModel::supported_architectures() {
    std::vector<std::string> names;
    for (const auto& a : hf_architectures()) names.push_back(a.model_type);
    names.push_back("greenmoe");
    return names;
}

MoeModel MoeModel::open(const fs::path& path, const std::vector<double>& kind_weights) {
    fs::path weights_path = path;
    // A greenmoe run or checkpoint folder holds its weights further in.
    if (fs::is_directory(path) && !fs::exists(path / "model.safetensors") &&
        !fs::exists(path / "model.safetensors.index.json") &&
        fs::exists(path / "checkpoints" / "latest")) {
        weights_path = resolve_checkpoint_weights(path);
    }
    MoeModel m(SafetensorsModel::open(weights_path));
    m.path_ = path;
    const auto& meta = m.tensors_.metadata();
    if (!m.tensors_.sharded() && meta.count(kGreenmoeConfigKey)) {
        m.architecture_ = "greenmoe";
        m.find_greenmoe_layers(kind_weights);
        return m;
    }
    const fs::path config_path = m.tensors_.dir() / "config.json";
    check(fs::is_regular_file(config_path),
          "{}: no config.json beside the weights (MoE pruning needs it to know the architecture; "
          "supported: {})",
          m.tensors_.dir().string(), supported_list());
    m.config_ = Json::parse(read_file(config_path), nullptr, false);
    check(!m.config_.is_discarded() && m.config_.is_object(), "{}: not a JSON object",
          config_path.string());
    m.find_hf_layers(kind_weights);
    return m;
}

void MoeModel::find_hf_layers(const std::vector<double>& kind_weights) {
    const fs::path config_path = tensors_.dir() / "config.json";
    const std::string where = config_path.string();
    std::string model_type = config_.value("model_type", std::string());
    std::string class_name;
    if (const auto it = config_.find("architectures");
        it != config_.end() && it->is_array() && !it->empty() && (*it)[0].is_string()) {
        class_name = (*it)[0].get<std::string>();
    }
    const HfArchitecture* arch = nullptr;
    for (const auto& a : hf_architectures()) {
        if (model_type == a.model_type || (model_type.empty() && class_name == a.class_name)) {
            arch = &a;
        }
    }
    if (arch == nullptr) {
        fail(
            "{}: unsupported architecture (model_type '{}', architectures '{}'); MoE expert "
            "pruning supports: {}",
            where, model_type, class_name, supported_list());
    }
    architecture_ = arch->model_type;
    experts_key_ = arch->experts_key;
    const std::vector<double> weights =
        resolve_weights(kind_weights, arch->weights, arch->kinds, architecture_);
    const int top_k = json_int(config_, "num_experts_per_tok", where);
    check(top_k >= 1, "{}: num_experts_per_tok must be ≥ 1, got {}", where, top_k);
    Json described = without_routing_groups(config_);
    described["model_type"] = architecture_;
    const Layout layout = layout_of(described, config_path, architecture_);
    const hf::TensorNames& names = layout.names;
    const std::string moe = names.moe;
    // The router module: its weight, and beside it DeepSeek-V3's e_score_correction_bias.
    const std::string router =
        moe + names.router.substr(0, names.router.size() - std::string("weight").size());

    // Group the tensors by layer: experts (index → suffixes), routers, shared experts.
    struct Found {
        std::map<int, std::set<std::string>> experts;
        std::vector<std::string> router, shared, fused;
    };
    std::map<int, Found> found;
    int max_layer = -1;
    for (const auto& name : tensors_.tensor_names()) {
        const std::string head = "model.layers.";
        if (name.rfind(head, 0) != 0) continue;
        size_t pos = head.size();
        int layer = 0;
        if (!parse_index(name, pos, '.', layer)) continue;
        max_layer = std::max(max_layer, layer);
        Found& f = found[layer];
        const std::string rest = name.substr(pos);
        if (!names.fused_experts && rest.rfind(moe + "experts.", 0) == 0) {
            size_t p = moe.size() + 8;
            int e = 0;
            check(parse_index(rest, p, '.', e),
                  "{}: tensor '{}' is under experts. but has no "
                  "expert number",
                  tensors_.source().string(), name);
            f.experts[e].insert(rest.substr(p));
        } else if (names.fused_experts && rest.rfind(moe, 0) == 0 &&
                   std::find(arch->kinds.begin(), arch->kinds.end(),
                             rest.substr(moe.size(), rest.find('.', moe.size()) - moe.size())) !=
                       arch->kinds.end()) {
            f.fused.push_back(name);
        } else if (rest.rfind(router, 0) == 0) {
            f.router.push_back(name);
        } else if ((!names.shared.empty() && rest.rfind(names.shared, 0) == 0) ||
                   (!names.shared_gate.empty() && rest == names.shared_gate)) {
            f.shared.push_back(name);
        }
    }
    num_layers_ = std::max(max_layer + 1, static_cast<int>(layout.experts.size()));

    const int dense_k = config_.value("first_k_dense_replace", 0);
    for (int l = 0; l < num_layers_; ++l) {
        const auto fit = found.find(l);
        const bool has_experts =
            fit != found.end() && (!fit->second.experts.empty() || !fit->second.fused.empty());
        const int expected =
            static_cast<size_t>(l) < layout.experts.size() ? layout.experts[size_t(l)] : 0;
        const std::string lw = fmt::format("{}: layer {}", tensors_.source().string(), l);
        if (!has_experts) {
            check(expected == 0, "{}: {} says {} experts but the weights have none", lw, where,
                  expected);
            std::string why = "dense MLP (no routed experts)";
            if (l < dense_k) why = fmt::format("dense MLP (first_k_dense_replace = {})", dense_k);
            skipped_.push_back({l, why});
            continue;
        }
        Found& f = fit->second;
        MoeLayer layer;
        layer.layer = l;
        layer.top_k = top_k;
        layer.kind_names = arch->kinds;
        layer.kind_weights = weights;
        layer.experts_prefix = fmt::format("model.layers.{}.{}experts.", l, moe);
        const char* count_key =
            config_.contains("num_experts_by_block") && !config_["num_experts_by_block"].is_null()
                ? "num_experts_by_block"
                : experts_key_.c_str();
        if (names.fused_experts) {
            // Granite: one tensor per matrix kind, the expert its first dimension.
            layer.stacked = true;
            layer.experts_prefix = fmt::format("model.layers.{}.{}", l, moe);
            for (const auto& kind : arch->kinds) {
                const std::string name = layer.experts_prefix + kind + ".weight";
                check(tensors_.find(name) != nullptr, "{}: no fused expert tensor '{}'", lw, name);
                layer.kind_tensors.push_back(name);
            }
            std::sort(f.fused.begin(), f.fused.end());
            layer.stacked_tensors = f.fused;
            layer.n_experts = static_cast<int>(tensors_.get(layer.kind_tensors[0]).shape.at(0));
            for (const auto& n : layer.stacked_tensors) {
                const TensorInfo& t = tensors_.get(n);
                check(!t.shape.empty() && t.shape[0] == layer.n_experts,
                      "{}: tensor '{}' has shape {}, expected {} experts in its first dimension",
                      lw, n, shape_text(t.shape), layer.n_experts);
                layer.params_per_expert += t.numel() / layer.n_experts;
            }
        } else {
            layer.n_experts = static_cast<int>(f.experts.size());
            check(f.experts.rbegin()->first == layer.n_experts - 1,
                  "{}: expert numbers are not 0..{} (found expert {} among {} experts)", lw,
                  layer.n_experts - 1, f.experts.rbegin()->first, layer.n_experts);
        }
        check(layer.n_experts == expected, "{}: has {} experts in the weights but {} says {} = {}",
              lw, layer.n_experts, where, count_key, expected);
        if (!names.fused_experts) {
            const auto& suffixes = f.experts.begin()->second;
            for (const auto& [e, s] : f.experts) {
                if (s != suffixes) {
                    std::string missing;
                    for (const auto& x : suffixes) {
                        if (s.count(x)) continue;
                        missing += missing.empty() ? "" : ", ";
                        missing += x;
                    }
                    for (const auto& x : s) {
                        if (suffixes.count(x)) continue;
                        missing += missing.empty() ? "" : ", ";
                        missing += x;
                    }
                    fail("{}: expert {} does not have the same tensors as expert 0 (differs in {})",
                         lw, e, missing);
                }
            }
            layer.expert_suffixes.assign(suffixes.begin(), suffixes.end());
            for (const auto& kind : arch->kinds) {
                std::string suffix = kind;
                suffix += ".weight";
                check(suffixes.count(suffix), "{}: experts have no '{}' tensor (expected {})", lw,
                      suffix, layer.expert_tensor(0, suffix));
                layer.kind_tensors.push_back(suffix);
            }
            for (const auto& s : layer.expert_suffixes) {
                const TensorInfo& t0 = tensors_.get(layer.expert_tensor(0, s));
                layer.params_per_expert += t0.numel();
                for (int e = 1; e < layer.n_experts; ++e) {
                    const TensorInfo& t = tensors_.get(layer.expert_tensor(e, s));
                    check(t.shape == t0.shape, "{}: '{}' has shape {} but expert 0's has {}", lw,
                          t.name, shape_text(t.shape), shape_text(t0.shape));
                }
            }
        }
        layer.router_weight = fmt::format("model.layers.{}.{}{}", l, moe, names.router);
        check(tensors_.find(layer.router_weight) != nullptr, "{}: no router tensor '{}'", lw,
              layer.router_weight);
        std::sort(f.router.begin(), f.router.end());
        for (const auto& r : f.router) {
            const TensorInfo& t = tensors_.get(r);
            check(!t.shape.empty() && t.shape[0] == layer.n_experts,
                  "{}: router tensor '{}' has shape {}, expected one row per expert ({} rows)", lw,
                  r, shape_text(t.shape), layer.n_experts);
        }
        check(tensors_.get(layer.router_weight).shape.size() == 2,
              "{}: router weight '{}' must be a matrix [experts, hidden]", lw, layer.router_weight);
        layer.router_tensors = f.router;
        layer.shared_tensors = f.shared;
        check(layer.n_experts >= layer.top_k, "{}: {} experts but num_experts_per_tok = {}", lw,
              layer.n_experts, layer.top_k);
        layers_.push_back(std::move(layer));
    }
    check(!layers_.empty(), "{}: no MoE layer with routed experts found ({} architecture)",
          tensors_.source().string(), architecture_);
}

void MoeModel::find_greenmoe_layers(const std::vector<double>& kind_weights) {
    const std::string where = tensors_.source().string();
    config_ = Json::parse(tensors_.metadata().at(kGreenmoeConfigKey), nullptr, false);
    check(!config_.is_discarded() && config_.is_object(), "{}: metadata '{}' is not a JSON object",
          where, kGreenmoeConfigKey);
    // n_experts_by_layer (written by an earlier pruning) is read here, the rest by GptConfig.
    Json base = config_;
    std::vector<int> by_layer;
    if (const auto it = base.find("n_experts_by_layer"); it != base.end()) {
        try {
            by_layer = it->get<std::vector<int>>();
        } catch (const Json::exception&) {
            fail("{}: n_experts_by_layer must be a list of integers", where);
        }
        base.erase("n_experts_by_layer");
    }
    GptConfig cfg;
    from_json(base, cfg);
    cfg.finalize();
    check(by_layer.empty() || by_layer.size() == static_cast<size_t>(cfg.n_layer),
          "{}: n_experts_by_layer has {} entries for {} layers", where, by_layer.size(),
          cfg.n_layer);
    num_layers_ = cfg.n_layer;
    experts_key_ = "n_experts";
    const std::vector<std::string> kinds = {"c_fc", "c_proj"};
    const std::vector<double> weights =
        resolve_weights(kind_weights, gpt_kind_weights(), kinds, "greenmoe");
    for (int l = 0; l < cfg.n_layer; ++l) {
        if (cfg.is_moa_block(l)) {
            skipped_.push_back({l, "mixture-of-attention heads (moa): not pruned by MoEITS"});
        }
        if (!cfg.is_moe_block(l)) {
            if (!cfg.is_moa_block(l)) skipped_.push_back({l, "dense MLP"});
            continue;
        }
        if (cfg.mlp == "condmlp") {
            skipped_.push_back(
                {l,
                 "condmlp: its paths share one MLP's weights, so there are no expert matrices "
                 "to compare or remove"});
            continue;
        }
        MoeLayer layer;
        layer.layer = l;
        layer.n_experts = by_layer.empty() ? cfg.n_experts : by_layer[l];
        layer.top_k = cfg.choices_per_token();
        layer.kind_names = kinds;
        layer.kind_weights = weights;
        layer.stacked = true;
        const std::string p = fmt::format("transformer.h.{}.mlp.", l);
        layer.experts_prefix = p + "experts.";
        layer.stacked_tensors = {p + "experts.c_fc.weight", p + "experts.c_fc.bias",
                                 p + "experts.c_proj.weight", p + "experts.c_proj.bias"};
        layer.kind_tensors = {p + "experts.c_fc.weight", p + "experts.c_proj.weight"};
        layer.router_weight = p + "router.weight";
        layer.router_tensors = {p + "router.weight"};
        if (tensors_.find(p + "noise.weight") != nullptr) {
            layer.router_tensors.push_back(p + "noise.weight");
        }
        const std::string lw = fmt::format("{}: layer {}", where, l);
        for (const auto& names : {layer.stacked_tensors, layer.router_tensors}) {
            for (const auto& n : names) {
                const TensorInfo& t = tensors_.get(n);
                check(!t.shape.empty() && t.shape[0] == layer.n_experts,
                      "{}: tensor '{}' has shape {}, expected {} experts in its first dimension",
                      lw, n, shape_text(t.shape), layer.n_experts);
            }
        }
        for (const auto& n : layer.stacked_tensors) {
            layer.params_per_expert += tensors_.get(n).numel() / layer.n_experts;
        }
        check(layer.n_experts >= layer.top_k, "{}: {} experts but {} per token", lw,
              layer.n_experts, layer.top_k);
        layers_.push_back(std::move(layer));
    }
    if (layers_.empty()) {
        std::string why;
        for (const auto& s : skipped_) {
            if (s.reason != "dense MLP") {
                why = s.reason;
                break;
            }
        }
        fail("{}: no prunable MoE layer (mlp = '{}', attn = '{}'){}{}", where, cfg.mlp, cfg.attn,
             why.empty() ? "" : ": ", why);
    }
}

int64_t MoeModel::matrix_numel(const MoeLayer& layer, int kind) const {
    if (layer.stacked) {
        return tensors_.get(layer.kind_tensors.at(kind)).numel() / layer.n_experts;
    }
    return tensors_.get(layer.expert_tensor(0, layer.kind_tensors.at(kind))).numel();
}

void MoeModel::read_matrix(const MoeLayer& layer, int e, int kind, std::vector<float>& out) const {
    check(e >= 0 && e < layer.n_experts && kind >= 0 &&
              kind < static_cast<int>(layer.kind_tensors.size()),
          "layer {}: no expert {} matrix kind {}", layer.layer, e, kind);
    if (!layer.stacked) {
        const std::string name = layer.expert_tensor(e, layer.kind_tensors[kind]);
        out.resize(static_cast<size_t>(tensors_.get(name).numel()));
        tensors_.read_f32_into(name, out.data());
        tensors_.release(name);
        return;
    }
    // One expert's slice of the stacked tensor, decoded without reading the others.
    const std::string& name = layer.kind_tensors[kind];
    const TensorInfo& t = tensors_.get(name);
    const size_t per = static_cast<size_t>(t.numel() / layer.n_experts);
    const size_t item = dtype_size(t.dtype);
    const std::byte* src = tensors_.bytes(name).data() + per * item * static_cast<size_t>(e);
    out.resize(per);
    for (size_t i = 0; i < per; ++i) {
        const std::byte* p = src + i * item;
        switch (t.dtype) {
            case DType::F32:
                std::memcpy(&out[i], p, 4);
                break;
            case DType::F64: {
                double v;
                std::memcpy(&v, p, 8);
                out[i] = static_cast<float>(v);
                break;
            }
            case DType::F16:
            case DType::BF16: {
                uint16_t v;
                std::memcpy(&v, p, 2);
                out[i] = t.dtype == DType::F16 ? f16_to_f32(v) : bf16_to_f32(v);
                break;
            }
            default:
                fail("{}: tensor '{}' has dtype {}, expected a float type", where_of(tensors_),
                     name, dtype_name(t.dtype));
        }
    }
}

Json without_routing_groups(Json config) {
    if (config.contains("n_group")) config["n_group"] = 1;
    if (config.contains("topk_group")) config["topk_group"] = 1;
    return config;
}

std::vector<double> parse_kind_weights(const std::string& text) {
    std::vector<double> w;
    size_t start = 0;
    while (start <= text.size()) {
        const size_t comma = text.find(',', start);
        const std::string part =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        size_t used = 0;
        double v = 0.0;
        try {
            v = std::stod(part, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        usage_check(!part.empty() && used == part.size(),
                    "--weights: '{}' is not a comma-separated list of numbers (e.g. 0.2,0.4,0.4)",
                    text);
        w.push_back(v);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return w;
}

}  // namespace greenmoe::moeits

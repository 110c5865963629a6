// config.json → ModelConfig: the keys every architecture shares, rope scaling, and the
// per-layer expert counts that `greenmoe simplify` writes.
#include "greenmoe/hf/hf_config.h"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "greenmoe/hf/architectures.h"
#include "greenmoe/hf/config_reader.h"

namespace greenmoe::hf {

namespace {

using Json = nlohmann::json;

// Real models have at most a few hundred layers.
constexpr int kMaxLayers = 1 << 16;

// An integer in [lo, hi] (hi ≥ 0), whether stored as signed or unsigned: parsed numbers ≥ 0
// are unsigned, numbers set from C++ signed.
bool integer_in(const Json& v, int64_t lo, int64_t hi) {
    if (!v.is_number_integer()) return false;
    if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(hi);
    const auto x = v.get<int64_t>();
    return x >= lo && x <= hi;
}

void read_common(const ConfigReader& c, ModelConfig& m) {
    m.vocab_size = c.positive("vocab_size");
    m.hidden_size = c.positive("hidden_size");
    m.num_layers = c.positive("num_hidden_layers");
    // The per-layer table is allocated from this count before any tensor is seen.
    check(m.num_layers <= kMaxLayers,
          "{}: num_hidden_layers is {}, more than the {} greenmoe accepts (a corrupt file?)",
          m.source.string(), m.num_layers, kMaxLayers);
    m.num_heads = c.positive("num_attention_heads");
    m.num_kv_heads = c.has("num_key_value_heads") ? c.positive("num_key_value_heads") : m.num_heads;
    check(m.num_heads % m.num_kv_heads == 0,
          "{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
          m.source.string(), m.num_heads, m.num_kv_heads);
    m.head_dim = c.has("head_dim") ? c.positive("head_dim") : m.hidden_size / m.num_heads;
    m.intermediate_size = c.integer("intermediate_size", 0);
    m.rms_norm_eps = c.number("rms_norm_eps", 1e-6);
    m.tie_word_embeddings = c.boolean("tie_word_embeddings", false);
    m.eos_token_ids = read_eos_token_ids(c.json(), c.source());
    m.attention_scale = 1.0 / std::sqrt(static_cast<double>(m.head_dim));
    m.rope.max_position = c.integer("max_position_embeddings", 0);
    m.layers.assign(static_cast<size_t>(m.num_layers), LayerConfig{});
    const std::string act = c.string("hidden_act", "silu");
    check(act == "silu" || act == "swish",
          "{}: unsupported hidden_act '{}' (the engine runs silu-gated MLPs)", m.source.string(),
          act);
}

// rope_scaling (transformers 4) or rope_parameters (transformers 5).
void read_rope(const ConfigReader& c, ModelConfig& m) {
    RopeConfig& r = m.rope;
    r.theta = c.number("rope_theta", 10000.0);
    const bool latent = m.attention == AttentionKind::Latent;
    const char* key = c.has("rope_scaling") ? "rope_scaling" : "rope_parameters";
    const Json none = Json::object();
    const ConfigReader s(c.has(key) ? c.json().at(key) : none, c.source());
    const double partial =
        s.number("partial_rotary_factor", c.number("partial_rotary_factor", 1.0));
    check(partial > 0.0 && partial <= 1.0, "{}: partial_rotary_factor must be in (0, 1], got {}",
          m.source.string(), partial);
    r.dim = latent ? m.qk_rope_head_dim : static_cast<int>(m.head_dim * partial);
    if (!c.has(key)) return;
    r.theta = s.number("rope_theta", r.theta);
    r.type = s.string("rope_type", s.string("type", "default"));
    const std::string where = fmt::format("{}: {}", m.source.string(), key);
    if (r.type == "default") return;
    r.factor = s.number("factor");
    if (r.type == "linear") return;
    if (r.type == "llama3") {
        r.low_freq_factor = s.number("low_freq_factor");
        r.high_freq_factor = s.number("high_freq_factor");
        r.original_max_position = s.positive("original_max_position_embeddings");
        return;
    }
    if (r.type == "yarn") {
        r.original_max_position = s.integer("original_max_position_embeddings", r.max_position);
        check(r.original_max_position > 0, "{}: yarn needs original_max_position_embeddings",
              where);
        r.beta_fast = s.number("beta_fast", 32.0);
        r.beta_slow = s.number("beta_slow", 1.0);
        r.mscale = s.number("mscale", 0.0);
        r.mscale_all_dim = s.number("mscale_all_dim", 0.0);
        r.attention_factor = s.number("attention_factor", 0.0);
        r.truncate = s.boolean("truncate", true);
        return;
    }
    fail("{}: unsupported rope type '{}' (expected default, linear, llama3 or yarn)", where,
         r.type);
}

// `greenmoe simplify` writes num_experts_by_block: the experts each layer kept (0: dense).
void read_expert_counts(const ConfigReader& c, ModelConfig& m) {
    if (!c.has("num_experts_by_block")) return;
    const Json& list = c.json().at("num_experts_by_block");
    check(list.is_array() && list.size() == m.layers.size(),
          "{}: 'num_experts_by_block' must list one expert count per layer ({}), got {}",
          m.source.string(), m.layers.size(), list.dump());
    for (size_t l = 0; l < m.layers.size(); ++l) {
        check(integer_in(list[l], 0, INT32_MAX),
              "{}: 'num_experts_by_block'[{}] must be a count, got {}", m.source.string(), l,
              list[l].dump());
        const int n = list[l].get<int>();
        if (m.layers[l].n_experts == 0) {
            check(n == 0, "{}: 'num_experts_by_block'[{}] is {} but layer {} is a dense MLP",
                  m.source.string(), l, n, l);
            continue;
        }
        check(n >= m.moe.top_k,
              "{}: 'num_experts_by_block'[{}] is {}, fewer than num_experts_per_tok ({})",
              m.source.string(), l, n, m.moe.top_k);
        m.layers[l].n_experts = n;
    }
    // Groups are runs of the original experts; a pruned layer keeps no trace of them (one
    // group limits nothing).
    check(m.moe.method == TopkMethod::Greedy || m.moe.n_group == 1,
          "{}: a pruned model (num_experts_by_block) with topk_method '{}' is not supported: its "
          "expert groups (n_group = {}) refer to the original experts",
          m.source.string(), c.string("topk_method", "noaux_tc"), m.moe.n_group);
}

void check_moe(const ModelConfig& m) {
    for (size_t l = 0; l < m.layers.size(); ++l) {
        const int e = m.layers[l].n_experts;
        if (e == 0) {
            check(m.intermediate_size > 0,
                  "{}: layer {} is a dense MLP but 'intermediate_size' is "
                  "missing",
                  m.source.string(), l);
            continue;
        }
        check(m.moe.top_k >= 1 && m.moe.top_k <= e,
              "{}: layer {}: num_experts_per_tok ({}) must be between 1 and its {} experts",
              m.source.string(), l, m.moe.top_k, e);
        check(m.moe.expert_intermediate > 0, "{}: the experts' intermediate size is missing",
              m.source.string());
        if (m.moe.method != TopkMethod::Greedy) {
            check(m.moe.n_group >= 1 && e % m.moe.n_group == 0 && m.moe.topk_group >= 1 &&
                      m.moe.topk_group <= m.moe.n_group,
                  "{}: layer {}: {} experts cannot form n_group = {} groups with topk_group = {}",
                  m.source.string(), l, e, m.moe.n_group, m.moe.topk_group);
        }
    }
}

}  // namespace

int ModelConfig::q_head_dim() const {
    return attention == AttentionKind::Latent ? qk_nope_head_dim + qk_rope_head_dim : head_dim;
}

int ModelConfig::v_dim() const {
    return attention == AttentionKind::Latent ? v_head_dim : head_dim;
}

std::string supported_model_types() {
    std::string list;
    for (const auto& a : architectures()) {
        if (!list.empty()) list += ", ";
        list += a.model_type;
    }
    return list;
}

ModelConfig parse_model_config(const Json& config, const std::filesystem::path& source) {
    const ConfigReader c(config, source);
    ModelConfig m;
    m.source = source;
    m.model_type = c.string("model_type", "");
    check(!m.model_type.empty(), "{}: missing key 'model_type' (expected one of: {})",
          source.string(), supported_model_types());
    const Architecture* arch = find_architecture(m.model_type);
    check(arch != nullptr, "{}: unsupported model_type '{}' (expected one of: {})", source.string(),
          m.model_type, supported_model_types());
    read_common(c, m);
    arch->describe(c, m);
    read_rope(c, m);
    read_expert_counts(c, m);
    check_moe(m);
    return m;
}

std::vector<int32_t> read_eos_token_ids(const Json& config, const std::filesystem::path& source) {
    std::vector<int32_t> ids;
    const auto it = config.find("eos_token_id");
    if (it == config.end() || it->is_null()) return ids;
    const Json list = it->is_array() ? *it : Json::array({*it});
    for (const auto& v : list) {
        check(integer_in(v, INT32_MIN, INT32_MAX),
              "{}: 'eos_token_id' must be a token id or a list of them, got {}", source.string(),
              it->dump());
        ids.push_back(v.get<int32_t>());
    }
    return ids;
}

ModelConfig read_model_config(const std::filesystem::path& config_json) {
    std::ifstream in(config_json);
    check(in.good(), "cannot open {}", config_json.string());
    std::stringstream text;
    text << in.rdbuf();
    Json j;
    try {
        j = Json::parse(text.str());
    } catch (const Json::exception& e) {
        fail("{}: not valid JSON: {}", config_json.string(), e.what());
    }
    return parse_model_config(j, config_json);
}

}  // namespace greenmoe::hf

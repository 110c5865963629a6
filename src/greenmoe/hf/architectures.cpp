// The architectures the engine runs, each as its Hugging Face modeling code defines it.
#include "greenmoe/hf/architectures.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace greenmoe::hf {

namespace {

// Mistral and Mixtral slide the window (when sliding_window is set) in every layer.
void every_layer_window(const ConfigReader& c, ModelConfig& m) {
    const int window = c.integer("sliding_window", 0);
    for (auto& layer : m.layers) layer.sliding_window = window;
}

// Which layers of a Qwen model slide their window when use_sliding_window is set, each as
// its transformers configuration decides (an explicit layer_types list wins).
enum class QwenWindows { FromMaxWindowLayers, EvenBelowMaxWindowLayers, All };

void qwen_window(const ConfigReader& c, ModelConfig& m, QwenWindows rule) {
    if (!c.boolean("use_sliding_window", false) || !c.has("sliding_window")) return;
    const int window = c.positive("sliding_window");
    if (c.has("layer_types")) {
        const auto& types = c.json().at("layer_types");
        check(types.is_array() && types.size() == m.layers.size(),
              "{}: 'layer_types' must list one type per layer ({})", c.source().string(),
              m.layers.size());
        for (size_t l = 0; l < m.layers.size(); ++l) {
            if (types[l] == "sliding_attention") m.layers[l].sliding_window = window;
        }
        return;
    }
    const int max_window_layers = c.integer("max_window_layers", 28);
    for (int l = 0; l < m.num_layers; ++l) {
        bool slides = true;
        if (rule == QwenWindows::FromMaxWindowLayers) slides = l >= max_window_layers;
        if (rule == QwenWindows::EvenBelowMaxWindowLayers) {
            slides = (l + 1) % 2 != 0 && l < max_window_layers;
        }
        if (slides) m.layers[static_cast<size_t>(l)].sliding_window = window;
    }
}

void every_layer_moe(ModelConfig& m, int n_experts) {
    for (auto& layer : m.layers) layer.n_experts = n_experts;
}

void describe_llama(const ConfigReader& c, ModelConfig& m) {
    m.qkv_bias = m.o_bias = c.boolean("attention_bias", false);
    check(!c.boolean("mlp_bias", false), "{}: 'mlp_bias' true is not supported",
          c.source().string());
}

void describe_mistral(const ConfigReader& c, ModelConfig& m) {
    every_layer_window(c, m);
}

void describe_mixtral(const ConfigReader& c, ModelConfig& m) {
    every_layer_window(c, m);
    every_layer_moe(m, c.positive("num_local_experts"));
    m.moe.top_k = c.positive("num_experts_per_tok");
    m.moe.expert_intermediate = m.intermediate_size;
    m.moe.normalize = true;
    m.names.moe = "block_sparse_moe.";
    m.names.gate = "w1";
    m.names.up = "w3";
    m.names.down = "w2";
}

void describe_qwen2(const ConfigReader& c, ModelConfig& m) {
    m.qkv_bias = true;
    qwen_window(c, m, QwenWindows::FromMaxWindowLayers);
}

void qwen3_attention(const ConfigReader& c, ModelConfig& m) {
    m.qkv_bias = m.o_bias = c.boolean("attention_bias", false);
    m.qk_norm = QkNorm::PerHead;
}

void describe_qwen3(const ConfigReader& c, ModelConfig& m) {
    qwen3_attention(c, m);
    qwen_window(c, m, QwenWindows::FromMaxWindowLayers);
}

// Qwen-MoE: a layer is sparse unless listed in mlp_only_layers, every decoder_sparse_step-th.
void qwen_moe_layers(const ConfigReader& c, ModelConfig& m) {
    const int n_experts = c.integer("num_experts", 0);
    const int step = c.integer("decoder_sparse_step", 1);
    std::vector<int> dense;
    if (c.has("mlp_only_layers")) {
        const auto& list = c.json().at("mlp_only_layers");
        check(list.is_array(), "{}: 'mlp_only_layers' must be a list of layer numbers",
              c.source().string());
        for (const auto& v : list) dense.push_back(v.get<int>());
    }
    for (int l = 0; l < m.num_layers; ++l) {
        const bool listed = std::find(dense.begin(), dense.end(), l) != dense.end();
        if (!listed && n_experts > 0 && step > 0 && (l + 1) % step == 0) {
            m.layers[static_cast<size_t>(l)].n_experts = n_experts;
        }
    }
    m.moe.top_k = c.positive("num_experts_per_tok");
    m.moe.expert_intermediate = c.positive("moe_intermediate_size");
    m.moe.normalize = c.boolean("norm_topk_prob", false);
}

void describe_qwen2_moe(const ConfigReader& c, ModelConfig& m) {
    m.qkv_bias = c.boolean("qkv_bias", true);
    qwen_window(c, m, QwenWindows::EvenBelowMaxWindowLayers);
    qwen_moe_layers(c, m);
    m.moe.shared_intermediate = c.integer("shared_expert_intermediate_size", 0);
    if (m.moe.shared_intermediate > 0) {
        m.names.shared = "mlp.shared_expert.";
        m.names.shared_gate = "mlp.shared_expert_gate.weight";
    }
}

void describe_qwen3_moe(const ConfigReader& c, ModelConfig& m) {
    qwen3_attention(c, m);
    qwen_window(c, m, QwenWindows::All);
    qwen_moe_layers(c, m);
}

void describe_olmoe(const ConfigReader& c, ModelConfig& m) {
    m.qkv_bias = m.o_bias = c.boolean("attention_bias", false);
    m.qk_norm = QkNorm::Whole;
    m.clip_qkv = c.number("clip_qkv", 0.0);
    every_layer_moe(m, c.positive("num_experts"));
    m.moe.top_k = c.positive("num_experts_per_tok");
    m.moe.expert_intermediate = m.intermediate_size;
    m.moe.normalize = c.boolean("norm_topk_prob", false);
}

// GraniteMoE(Shared): the router's softmax runs over the top-k logits only, which equals the
// full softmax renormalized over the chosen experts.
void describe_granitemoe(const ConfigReader& c, ModelConfig& m) {
    m.qkv_bias = m.o_bias = c.boolean("attention_bias", false);
    m.embedding_multiplier = c.number("embedding_multiplier", 1.0);
    m.residual_multiplier = c.number("residual_multiplier", 1.0);
    m.attention_scale = c.number("attention_multiplier", 1.0);
    m.logits_scaling = c.number("logits_scaling", 1.0);
    every_layer_moe(m, c.positive("num_local_experts"));
    m.moe.top_k = c.positive("num_experts_per_tok");
    m.moe.expert_intermediate = m.intermediate_size;
    m.moe.normalize = true;
    m.names.moe = "block_sparse_moe.";
    m.names.router = "router.layer.weight";
    m.names.fused_experts = true;
    m.moe.shared_intermediate = c.integer("shared_intermediate_size", 0);
    if (m.moe.shared_intermediate > 0) m.names.shared = "shared_mlp.";
}

double yarn_mscale(double scale, double mscale) {
    return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

void describe_deepseek(const ConfigReader& c, ModelConfig& m, bool v3) {
    m.attention = AttentionKind::Latent;
    m.q_lora_rank = c.integer("q_lora_rank", 0);
    m.kv_lora_rank = c.positive("kv_lora_rank");
    m.qk_nope_head_dim = c.positive("qk_nope_head_dim");
    m.qk_rope_head_dim = c.positive("qk_rope_head_dim");
    m.v_head_dim = c.positive("v_head_dim");
    check(static_cast<int64_t>(m.qk_nope_head_dim) + m.qk_rope_head_dim <= INT32_MAX,
          "{}: qk_nope_head_dim + qk_rope_head_dim ({} + {}) is too large", c.source().string(),
          m.qk_nope_head_dim, m.qk_rope_head_dim);
    m.latent_bias = c.boolean("attention_bias", false);
    m.attention_scale =
        1.0 / std::sqrt(static_cast<double>(m.qk_nope_head_dim + m.qk_rope_head_dim));
    // DeepSeek's YaRN also scales the softmax by mscale(factor, mscale_all_dim)².
    const char* key = c.has("rope_scaling") ? "rope_scaling" : "rope_parameters";
    if (c.has(key)) {
        const ConfigReader rs(c.json().at(key), c.source());
        const double all_dim = rs.number("mscale_all_dim", 0.0);
        const std::string type = rs.string("rope_type", rs.string("type", "default"));
        if (type != "default" && all_dim != 0.0) {
            const double s = yarn_mscale(rs.number("factor"), all_dim);
            m.attention_scale *= s * s;
        }
    }
    const int n_experts = c.integer("n_routed_experts", 0);
    const int dense_k = c.integer("first_k_dense_replace", 0);
    const int freq = c.integer("moe_layer_freq", 1);
    check(freq >= 1, "{}: 'moe_layer_freq' must be ≥ 1, got {}", c.source().string(), freq);
    for (int l = 0; l < m.num_layers; ++l) {
        if (n_experts > 0 && l >= dense_k && l % freq == 0) {
            m.layers[static_cast<size_t>(l)].n_experts = n_experts;
        }
    }
    m.moe.top_k = c.integer("num_experts_per_tok", 0);
    m.moe.expert_intermediate = c.integer("moe_intermediate_size", 0);
    m.moe.n_group = c.integer("n_group", 1);
    m.moe.topk_group = c.integer("topk_group", 1);
    const std::string method = c.string("topk_method", v3 ? "noaux_tc" : "greedy");
    if (method == "greedy") {
        m.moe.method = TopkMethod::Greedy;
    } else if (method == "group_limited_greedy") {
        m.moe.method = TopkMethod::GroupLimitedGreedy;
    } else if (method == "noaux_tc") {
        m.moe.method = TopkMethod::NoauxTc;
        m.moe.correction_bias = true;
    } else {
        fail("{}: unsupported topk_method '{}' (expected greedy, group_limited_greedy or noaux_tc)",
             c.source().string(), method);
    }
    const std::string scoring = c.string("scoring_func", v3 ? "sigmoid" : "softmax");
    check(scoring == "softmax" || scoring == "sigmoid",
          "{}: unsupported scoring_func '{}' (expected softmax or sigmoid)", c.source().string(),
          scoring);
    m.moe.scoring = scoring == "softmax" ? Scoring::Softmax : Scoring::Sigmoid;
    // DeepSeek-V2 either normalizes (norm_topk_prob, k > 1) or scales by
    // routed_scaling_factor; V3 normalizes when asked and always scales.
    const bool norm = c.boolean("norm_topk_prob", v3);
    const double scaling = c.number("routed_scaling_factor", 1.0);
    if (v3) {
        m.moe.normalize = norm;
        m.moe.scale = scaling;
    } else {
        m.moe.normalize = norm && m.moe.top_k > 1;
        m.moe.scale = m.moe.normalize ? 1.0 : scaling;
    }
    const int shared = c.integer("n_shared_experts", 0);
    if (shared > 0) {
        const int64_t size = static_cast<int64_t>(shared) * m.moe.expert_intermediate;
        check(size >= 0 && size <= INT32_MAX,
              "{}: n_shared_experts × moe_intermediate_size ({} × {}) is out of range",
              c.source().string(), shared, m.moe.expert_intermediate);
        m.moe.shared_intermediate = static_cast<int>(size);
        m.names.shared = "mlp.shared_experts.";
    }
    // Rope on the rope part of each head, adjacent pairs (rope_interleave, true by default).
    m.rope.style = c.boolean("rope_interleave", true) ? RopeStyle::Interleaved : RopeStyle::Half;
}

void describe_deepseek_v2(const ConfigReader& c, ModelConfig& m) {
    describe_deepseek(c, m, false);
}
void describe_deepseek_v3(const ConfigReader& c, ModelConfig& m) {
    describe_deepseek(c, m, true);
}

}  // namespace

const std::vector<Architecture>& architectures() {
    static const std::vector<Architecture> list = {
        {"llama", describe_llama},
        {"mistral", describe_mistral},
        {"mixtral", describe_mixtral},
        {"qwen2", describe_qwen2},
        {"qwen2_moe", describe_qwen2_moe},
        {"qwen3", describe_qwen3},
        {"qwen3_moe", describe_qwen3_moe},
        {"olmoe", describe_olmoe},
        {"granitemoe", describe_granitemoe},
        {"granitemoeshared", describe_granitemoe},
        {"deepseek_v2", describe_deepseek_v2},
        {"deepseek_v3", describe_deepseek_v3},
    };
    return list;
}

const Architecture* find_architecture(const std::string& model_type) {
    for (const auto& a : architectures()) {
        if (model_type == a.model_type) return &a;
    }
    return nullptr;
}

}  // namespace greenmoe::hf

// Finds and checks every tensor of a Hugging Face model (see hf_weights.h).
#include "greenmoe/hf/hf_weights.h"

#include <cstring>
#include <unordered_map>
#include <utility>

#include "greenmoe/core/error.h"
#include "greenmoe/core/half.h"
#include "greenmoe/core/shape_text.h"

namespace greenmoe::hf {

namespace {

// Where load_weights finds tensors: a mapped model (views into its files), or for a check
// only, a list of names, dtypes and shapes (the views stay empty, vectors zero).
class Lookup {
  public:
    Lookup(const SafetensorsModel& model, const ModelConfig& config)
        : model_(&model), where_(model.source().string()), config_(config) {}
    Lookup(const std::vector<TensorInfo>& tensors, std::string where, const ModelConfig& config)
        : where_(std::move(where)), config_(config) {
        for (const TensorInfo& t : tensors) listed_[t.name] = &t;
    }

    bool has(const std::string& name) const { return find(name) != nullptr; }

    Mat matrix(const std::string& name, int64_t rows, int64_t cols) const {
        const TensorInfo& t = get(name, {rows, cols});
        Mat m{data(t), t.dtype, rows, cols};
        matrices.emplace_back(name, m);
        return m;
    }

    // What matrix() returned, by name (ModelWeights::named).
    mutable std::vector<std::pair<std::string, Mat>> matrices;

    // Expert e of a stacked [experts, rows, cols] tensor.
    Mat stacked(const std::string& name, int64_t experts, int64_t e, int64_t rows,
                int64_t cols) const {
        const TensorInfo& t = get(name, {experts, rows, cols});
        const size_t bytes = static_cast<size_t>(rows * cols) * dtype_size(t.dtype);
        const std::byte* base = data(t);
        return Mat{base ? base + static_cast<size_t>(e) * bytes : nullptr, t.dtype, rows, cols};
    }

    std::vector<float> vector(const std::string& name, int64_t n) const {
        get(name, {n});
        return model_ ? model_->read_f32(name) : std::vector<float>(static_cast<size_t>(n));
    }

  private:
    const TensorInfo* find(const std::string& name) const {
        if (model_) return model_->find(name);
        const auto it = listed_.find(name);
        return it == listed_.end() ? nullptr : it->second;
    }

    const std::byte* data(const TensorInfo& t) const {
        return model_ ? model_->file_of(t.name).data(t) : nullptr;
    }

    const TensorInfo& get(const std::string& name, const std::vector<int64_t>& shape) const {
        const TensorInfo* t = find(name);
        check(t != nullptr, "{}: missing tensor '{}' (expected shape {} for {} in {})", where_,
              name, shape_text(shape), config_.model_type, config_.source.string());
        const std::string file = model_ ? model_->file_of(name).path().string() : where_;
        check(t->shape == shape, "{}: tensor '{}' has shape {}, expected {} from {}", file, name,
              shape_text(t->shape), shape_text(shape), config_.source.string());
        check(t->dtype == DType::F32 || t->dtype == DType::BF16 || t->dtype == DType::F16 ||
                  (shape.size() == 1 && t->dtype == DType::F64),
              "{}: tensor '{}' has dtype {}, expected F32, BF16 or F16", file, name,
              dtype_name(t->dtype));
        return *t;
    }

    const SafetensorsModel* model_ = nullptr;
    std::unordered_map<std::string, const TensorInfo*> listed_;
    std::string where_;
    const ModelConfig& config_;
};

AttentionWeights load_standard_attention(const Lookup& w, const ModelConfig& c,
                                         const std::string& p) {
    AttentionWeights a;
    const int64_t h = c.hidden_size, q = int64_t{c.num_heads} * c.head_dim,
                  kv = int64_t{c.num_kv_heads} * c.head_dim;
    a.q = w.matrix(p + "q_proj.weight", q, h);
    a.k = w.matrix(p + "k_proj.weight", kv, h);
    a.v = w.matrix(p + "v_proj.weight", kv, h);
    a.o = w.matrix(p + "o_proj.weight", h, q);
    if (c.qkv_bias) {
        a.q_bias = w.vector(p + "q_proj.bias", q);
        a.k_bias = w.vector(p + "k_proj.bias", kv);
        a.v_bias = w.vector(p + "v_proj.bias", kv);
    }
    if (c.o_bias) a.o_bias = w.vector(p + "o_proj.bias", h);
    if (c.qk_norm == QkNorm::PerHead) {
        a.q_norm = w.vector(p + "q_norm.weight", c.head_dim);
        a.k_norm = w.vector(p + "k_norm.weight", c.head_dim);
    } else if (c.qk_norm == QkNorm::Whole) {
        a.q_norm = w.vector(p + "q_norm.weight", q);
        a.k_norm = w.vector(p + "k_norm.weight", kv);
    }
    return a;
}

AttentionWeights load_latent_attention(const Lookup& w, const ModelConfig& c,
                                       const std::string& p) {
    AttentionWeights a;
    const int64_t h = c.hidden_size, heads = c.num_heads;
    const int64_t q = heads * c.q_head_dim();
    if (c.q_lora_rank > 0) {
        a.q_a = w.matrix(p + "q_a_proj.weight", c.q_lora_rank, h);
        if (c.latent_bias) a.q_a_bias = w.vector(p + "q_a_proj.bias", c.q_lora_rank);
        a.q_a_norm = w.vector(p + "q_a_layernorm.weight", c.q_lora_rank);
        a.q_b = w.matrix(p + "q_b_proj.weight", q, c.q_lora_rank);
    } else {
        a.q = w.matrix(p + "q_proj.weight", q, h);
    }
    const int64_t kv_a = int64_t{c.kv_lora_rank} + c.qk_rope_head_dim;
    a.kv_a = w.matrix(p + "kv_a_proj_with_mqa.weight", kv_a, h);
    if (c.latent_bias) a.kv_a_bias = w.vector(p + "kv_a_proj_with_mqa.bias", kv_a);
    a.kv_a_norm = w.vector(p + "kv_a_layernorm.weight", c.kv_lora_rank);
    a.kv_b = w.matrix(p + "kv_b_proj.weight", heads * (c.qk_nope_head_dim + c.v_head_dim),
                      c.kv_lora_rank);
    a.o = w.matrix(p + "o_proj.weight", h, heads * c.v_head_dim);
    if (c.latent_bias) a.o_bias = w.vector(p + "o_proj.bias", h);
    return a;
}

GatedMlp load_mlp(const Lookup& w, const std::string& p, const ModelConfig& c, int64_t inter) {
    const int64_t h = c.hidden_size;
    return GatedMlp{w.matrix(p + "gate_proj.weight", inter, h),
                    w.matrix(p + "up_proj.weight", inter, h),
                    w.matrix(p + "down_proj.weight", h, inter)};
}

// Granite's input_linear holds gate and up stacked: [2·inter, hidden].
GatedMlp split_gate_up(const Mat& gate_up, const Mat& down, int64_t inter) {
    return GatedMlp{gate_up.row_slice(0, inter), gate_up.row_slice(inter, inter), down};
}

MoeWeights load_moe(const Lookup& w, const ModelConfig& c, const std::string& layer, int n) {
    MoeWeights m;
    const TensorNames& names = c.names;
    const std::string p = layer + names.moe;
    const int64_t h = c.hidden_size, inter = c.moe.expert_intermediate;
    m.router = w.matrix(p + names.router, n, h);
    if (c.moe.correction_bias) m.correction_bias = w.vector(p + "gate.e_score_correction_bias", n);
    for (int e = 0; e < n; ++e) {
        if (names.fused_experts) {
            m.experts.push_back(
                split_gate_up(w.stacked(p + names.fused_gate_up + ".weight", n, e, 2 * inter, h),
                              w.stacked(p + names.fused_down + ".weight", n, e, h, inter), inter));
        } else if (w.has(p + names.stacked_gate_up)) {
            // The stacked layout transformers 5 keeps in memory (and may save).
            m.experts.push_back(
                split_gate_up(w.stacked(p + names.stacked_gate_up, n, e, 2 * inter, h),
                              w.stacked(p + names.stacked_down, n, e, h, inter), inter));
        } else {
            const std::string x = fmt::format("{}experts.{}.", p, e);
            m.experts.push_back(GatedMlp{w.matrix(x + names.gate + ".weight", inter, h),
                                         w.matrix(x + names.up + ".weight", inter, h),
                                         w.matrix(x + names.down + ".weight", h, inter)});
        }
    }
    const int64_t shared = c.moe.shared_intermediate;
    if (shared > 0) {
        const std::string s = layer + names.shared;
        if (names.fused_experts) {
            m.shared = split_gate_up(w.matrix(s + names.fused_gate_up + ".weight", 2 * shared, h),
                                     w.matrix(s + names.fused_down + ".weight", h, shared), shared);
        } else {
            m.shared = load_mlp(w, s, c, shared);
        }
        if (!names.shared_gate.empty()) m.shared_gate = w.matrix(layer + names.shared_gate, 1, h);
    }
    return m;
}

}  // namespace

Mat Mat::row_slice(int64_t begin, int64_t count) const {
    const std::byte* first =
        data ? data + static_cast<size_t>(begin * cols) * dtype_size(dtype) : nullptr;
    return Mat{first, dtype, count, cols};
}

void Mat::read_row(int64_t r, float* out) const {
    const size_t n = static_cast<size_t>(cols);
    const std::byte* p = data + static_cast<size_t>(r) * n * dtype_size(dtype);
    if (dtype == DType::F32) {
        std::memcpy(out, p, n * sizeof(float));
        return;
    }
    const auto* h = reinterpret_cast<const uint16_t*>(p);
    if (dtype == DType::BF16) {
        for (size_t i = 0; i < n; ++i) out[i] = bf16_to_f32(h[i]);
    } else {
        for (size_t i = 0; i < n; ++i) out[i] = f16_to_f32(h[i]);
    }
}

namespace {

ModelWeights load_from(const Lookup& w, const ModelConfig& c) {
    ModelWeights m;
    const int64_t h = c.hidden_size;
    m.embed = w.matrix("model.embed_tokens.weight", c.vocab_size, h);
    m.lm_head = c.tie_word_embeddings ? m.embed : w.matrix("lm_head.weight", c.vocab_size, h);
    m.final_norm = w.vector("model.norm.weight", h);
    for (int l = 0; l < c.num_layers; ++l) {
        const std::string p = fmt::format("model.layers.{}.", l);
        LayerWeights layer;
        layer.input_norm = w.vector(p + "input_layernorm.weight", h);
        layer.post_norm = w.vector(p + "post_attention_layernorm.weight", h);
        layer.attention = c.attention == AttentionKind::Latent
                              ? load_latent_attention(w, c, p + "self_attn.")
                              : load_standard_attention(w, c, p + "self_attn.");
        const int n_experts = c.layers[static_cast<size_t>(l)].n_experts;
        if (n_experts > 0) {
            layer.moe = load_moe(w, c, p, n_experts);
        } else {
            layer.mlp = load_mlp(w, p + "mlp.", c, c.intermediate_size);
        }
        m.layers.push_back(std::move(layer));
    }
    m.named = std::move(w.matrices);
    return m;
}

}  // namespace

ModelWeights load_weights(const SafetensorsModel& model, const ModelConfig& config) {
    return load_from(Lookup(model, config), config);
}

void check_weight_shapes(const std::vector<TensorInfo>& tensors, const std::string& where,
                         const ModelConfig& config) {
    load_from(Lookup(tensors, where, config), config);
}

}  // namespace greenmoe::hf

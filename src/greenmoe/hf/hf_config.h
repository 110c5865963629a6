// The description of a Hugging Face decoder-only LM that the engine runs, read from config.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace greenmoe::hf {

// Which dimensions rotate together: rotate_half pairs (i, i + d/2) as Llama does, or
// adjacent pairs (2i, 2i + 1) as DeepSeek's multi-head latent attention does.
enum class RopeStyle { Half, Interleaved };

struct RopeConfig {
    std::string type = "default";  // default, linear, llama3, yarn
    double theta = 10000.0;
    int dim = 0;  // rotated dimensions per head
    RopeStyle style = RopeStyle::Half;
    double factor = 1.0;
    int max_position = 0;           // config max_position_embeddings
    int original_max_position = 0;  // yarn, llama3
    double beta_fast = 32.0, beta_slow = 1.0;
    double mscale = 0.0, mscale_all_dim = 0.0;             // yarn (0: absent)
    double attention_factor = 0.0;                         // yarn (0: absent, derived)
    bool truncate = true;                                  // yarn
    double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
};

enum class QkNorm { None, PerHead, Whole };  // Qwen3: per head; OLMoE: over the projection
enum class AttentionKind { Standard, Latent };
enum class Scoring { Softmax, Sigmoid };
// greedy: top-k of the scores; group_limited_greedy (DeepSeek-V2) and noaux_tc (DeepSeek-V3)
// first keep the best topk_group of n_group expert groups.
enum class TopkMethod { Greedy, GroupLimitedGreedy, NoauxTc };

// Where an architecture keeps its tensors, relative to "model.layers.<L>.".
struct TensorNames {
    std::string moe = "mlp.";                                            // the MoE module
    std::string router = "gate.weight";                                  // inside the MoE module
    std::string gate = "gate_proj", up = "up_proj", down = "down_proj";  // expert projections
    // Granite: every expert in two tensors of the MoE module, gate and up stacked in
    // fused_gate_up [E, 2I, H] and fused_down [E, H, I]; its shared expert has the same two
    // names ([2I, H], [H, I]).
    bool fused_experts = false;
    std::string fused_gate_up = "input_linear", fused_down = "output_linear";
    // transformers 5 may save any model's experts stacked the same way under these names.
    std::string stacked_gate_up = "experts.gate_up_proj", stacked_down = "experts.down_proj";
    std::string shared;       // shared expert module ("" when none)
    std::string shared_gate;  // Qwen2-MoE's sigmoid gate of the shared expert
};

struct MoeConfig {
    int top_k = 0;
    int expert_intermediate = 0;
    Scoring scoring = Scoring::Softmax;
    TopkMethod method = TopkMethod::Greedy;
    // The chosen experts' scores are divided by their sum when `normalize`, then × `scale`.
    bool normalize = false;
    double scale = 1.0;
    int n_group = 1, topk_group = 1;
    bool correction_bias = false;  // gate.e_score_correction_bias (noaux_tc)
    int shared_intermediate = 0;   // 0: no shared expert
};

struct LayerConfig {
    int n_experts = 0;       // 0: a dense MLP
    int sliding_window = 0;  // 0: full causal attention
};

struct ModelConfig {
    std::string model_type;
    std::filesystem::path source;  // config.json, for messages
    int vocab_size = 0, hidden_size = 0, num_layers = 0;
    int num_heads = 0, num_kv_heads = 0, head_dim = 0;
    int intermediate_size = 0;  // dense MLPs
    double rms_norm_eps = 1e-6;
    bool tie_word_embeddings = false;
    std::vector<int32_t> eos_token_ids;  // eos_token_id: one id or a list
    // Attention.
    AttentionKind attention = AttentionKind::Standard;
    bool qkv_bias = false, o_bias = false;
    QkNorm qk_norm = QkNorm::None;
    double clip_qkv = 0.0;         // OLMoE (0: none)
    double attention_scale = 0.0;  // multiplies q·k
    // Multi-head latent attention (DeepSeek).
    int q_lora_rank = 0;  // 0: q_proj directly
    int kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
    bool latent_bias = false;  // attention_bias: q_a_proj, kv_a_proj_with_mqa, o_proj
    // Granite multipliers.
    double embedding_multiplier = 1.0, residual_multiplier = 1.0, logits_scaling = 1.0;
    RopeConfig rope;
    MoeConfig moe;
    TensorNames names;
    std::vector<LayerConfig> layers;

    int q_head_dim() const;  // per head: head_dim, or nope + rope for latent attention
    int k_head_dim() const { return q_head_dim(); }
    int v_dim() const;  // per head
};

// Reads a config.json object. `source` names the file in messages. Unknown model_type,
// unsupported rope_scaling or activation, or a missing required key throw Error.
ModelConfig parse_model_config(const nlohmann::json& config, const std::filesystem::path& source);
ModelConfig read_model_config(const std::filesystem::path& config_json);

// eos_token_id of a config.json or generation_config.json object: null, one id or a list.
std::vector<int32_t> read_eos_token_ids(const nlohmann::json& config,
                                        const std::filesystem::path& source);

// The model_type values the engine runs, comma separated.
std::string supported_model_types();

}  // namespace greenmoe::hf

// Shape of a GPT-2 (nanoGPT) model: layers, heads, width, context and vocabulary.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace greenmoe {

struct GptConfig {
    int n_layer = 6;
    int n_head = 6;
    int n_embd = 384;
    int block_size = 256;       // maximum sequence length (rows of wpe)
    int vocab_size = 50257;     // real tokens
    int padded_vocab_size = 0;  // 0 = vocab_size rounded up to a multiple of 64 (50257 → 50304)

    // Mixture of Experts (docs/moe.md). mlp: "dense", "olnn", "switch", "gshard",
    // "condmlp"; attn: "mha" or "moa" (mixture of attention heads). The MLP (and, for
    // moa, the attention) of block l is an MoE layer when (l + 1) % moe_every == 0.
    std::string mlp = "dense";
    std::string attn = "mha";
    int n_experts = 4;
    int top_k = 2;          // olnn's k (switch uses 1, gshard 2, condmlp 1)
    int expert_hidden = 0;  // 0 = 4·n_embd
    int moe_every = 1;
    float capacity_factor = 1.25f;      // training (switch, gshard)
    float eval_capacity_factor = 2.0f;  // evaluation
    bool condmlp_eval_sample = false;   // condmlp in evaluation: argmax (false) or sample
    // Auxiliary mechanisms: loss weights, and the loss-free bias step γ (0 = off).
    float w_load = 0.0f;
    float w_importance = 0.0f;
    float lambda_z = 0.0f;
    float w_penalty = 0.0f;
    float bias_gamma = 0.0f;
    // Experts kept per block by expert pruning (`greenmoe simplify`): one entry per block,
    // 0 for blocks without a routed MLP. Empty: every routed MLP has n_experts. n_experts
    // itself stays the original count, which moa attention still uses.
    std::vector<int> n_experts_by_layer;

    bool is_moe() const { return mlp != "dense" || attn == "moa"; }
    bool is_moe_block(int layer) const { return mlp != "dense" && (layer + 1) % moe_every == 0; }
    bool is_moa_block(int layer) const { return attn == "moa" && (layer + 1) % moe_every == 0; }
    // Experts of block `layer`'s routed MLP (0 when that MLP is dense).
    int mlp_experts(int layer) const;
    // Every routed layer in the order of the model's per-layer MoE state (the loss-free
    // bias rows, the token counts): block by block, a block's moa attention before its MLP.
    struct RoutedSlot {
        int block;
        bool attention;
        int experts;
    };
    std::vector<RoutedSlot> routed_slots() const;
    // How files store the loss-free bias: {routed layers, E} when every routed layer has
    // the same count (the layout of unpruned models), else the rows laid end to end.
    std::vector<int64_t> moe_bias_shape() const;
    int hidden() const { return expert_hidden > 0 ? expert_hidden : 4 * n_embd; }
    // Expert choices per token: k for olnn, 1 for switch and condmlp, 2 for gshard.
    int choices_per_token() const;

    // Fills padded_vocab_size if 0 and checks every field; throws Error naming the field.
    void finalize();
    int head_size() const { return n_embd / n_head; }
};

// Rounds up to a multiple of 64 so the LM head's sgemm sees an aligned dimension
// (nanoGPT's 50304 trick).
int pad_vocab_size(int vocab_size);

void to_json(nlohmann::json& j, const GptConfig& c);
// Reads the fields present in j (others keep their values); unknown keys are an Error.
void from_json(const nlohmann::json& j, GptConfig& c);

}  // namespace greenmoe

// GptConfig validation and JSON (see gpt_config.h).
#include "greenmoe/model/gpt_config.h"

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/core/json_util.h"

namespace greenmoe {

int pad_vocab_size(int vocab_size) {
    return (vocab_size + 63) / 64 * 64;
}

int GptConfig::choices_per_token() const {
    if (mlp == "olnn") return top_k;
    if (mlp == "gshard") return 2;
    return 1;
}

int GptConfig::mlp_experts(int layer) const {
    if (!is_moe_block(layer)) return 0;
    return n_experts_by_layer.empty() ? n_experts : n_experts_by_layer[size_t(layer)];
}

std::vector<GptConfig::RoutedSlot> GptConfig::routed_slots() const {
    std::vector<RoutedSlot> slots;
    for (int l = 0; l < n_layer; ++l) {
        if (is_moa_block(l)) slots.push_back({l, true, n_experts});
        if (is_moe_block(l)) slots.push_back({l, false, mlp_experts(l)});
    }
    return slots;
}

std::vector<int64_t> GptConfig::moe_bias_shape() const {
    const std::vector<RoutedSlot> slots = routed_slots();
    int64_t total = 0;
    bool uniform = true;
    for (const RoutedSlot& slot : slots) {
        total += slot.experts;
        uniform = uniform && slot.experts == slots[0].experts;
    }
    if (uniform)
        return {static_cast<int64_t>(slots.size()), slots.empty() ? n_experts : slots[0].experts};
    return {total};
}

void GptConfig::finalize() {
    check(n_layer >= 1, "model.n_layer must be ≥ 1, got {}", n_layer);
    check(n_head >= 1, "model.n_head must be ≥ 1, got {}", n_head);
    check(n_embd >= 1 && n_embd % n_head == 0,
          "model.n_embd must be a positive multiple of model.n_head ({}), got {}", n_head, n_embd);
    check(block_size >= 1, "model.block_size must be ≥ 1, got {}", block_size);
    check(vocab_size >= 1 && vocab_size <= 65536,
          "model.vocab_size must be in [1, 65536] (tokens are stored as uint16), got {}",
          vocab_size);
    check(mlp == "dense" || mlp == "olnn" || mlp == "switch" || mlp == "gshard" || mlp == "condmlp",
          "model.mlp must be one of dense, olnn, switch, gshard, condmlp; got '{}'", mlp);
    check(attn == "mha" || attn == "moa", "model.attn must be 'mha' or 'moa', got '{}'", attn);
    check(n_experts >= 1 && n_experts <= 256, "model.n_experts must be in [1, 256], got {}",
          n_experts);
    check(top_k >= 1 && top_k <= n_experts, "model.top_k must be in [1, n_experts = {}], got {}",
          n_experts, top_k);
    check(mlp != "gshard" || n_experts >= 2, "model.mlp = gshard needs n_experts ≥ 2");
    check(expert_hidden >= 0, "model.expert_hidden must be ≥ 0 (0 = 4·n_embd)");
    check(moe_every >= 1, "model.moe_every must be ≥ 1, got {}", moe_every);
    check(capacity_factor > 0 && eval_capacity_factor > 0,
          "model.capacity_factor and model.eval_capacity_factor must be > 0");
    check(w_load >= 0 && w_importance >= 0 && lambda_z >= 0 && w_penalty >= 0 && bias_gamma >= 0,
          "model.w_load, w_importance, lambda_z, w_penalty and bias_gamma must be ≥ 0");
    if (!n_experts_by_layer.empty()) {
        check(static_cast<int>(n_experts_by_layer.size()) == n_layer,
              "model.n_experts_by_layer must have one entry per block (n_layer = {}), got {}",
              n_layer, n_experts_by_layer.size());
        for (int l = 0; l < n_layer; ++l) {
            const int e = n_experts_by_layer[size_t(l)];
            if (!is_moe_block(l)) {
                check(e == 0,
                      "model.n_experts_by_layer[{}] must be 0: block {} has no routed MLP, got {}",
                      l, l, e);
                continue;
            }
            // Pruning only removes experts, and the router still needs a choice per slot.
            check(e >= choices_per_token() && e <= n_experts,
                  "model.n_experts_by_layer[{}] must be in [{} (expert choices per token), "
                  "n_experts = {}], got {}",
                  l, choices_per_token(), n_experts, e);
        }
    }
    if (padded_vocab_size == 0) padded_vocab_size = pad_vocab_size(vocab_size);
    check(padded_vocab_size >= vocab_size,
          "model.padded_vocab_size ({}) must be ≥ model.vocab_size ({})", padded_vocab_size,
          vocab_size);
}

void to_json(nlohmann::json& j, const GptConfig& c) {
    j = nlohmann::json{{"n_layer", c.n_layer},
                       {"n_head", c.n_head},
                       {"n_embd", c.n_embd},
                       {"block_size", c.block_size},
                       {"vocab_size", c.vocab_size},
                       {"padded_vocab_size", c.padded_vocab_size},
                       {"mlp", c.mlp},
                       {"attn", c.attn},
                       {"n_experts", c.n_experts},
                       {"top_k", c.top_k},
                       {"expert_hidden", c.expert_hidden},
                       {"moe_every", c.moe_every},
                       {"capacity_factor", c.capacity_factor},
                       {"eval_capacity_factor", c.eval_capacity_factor},
                       {"condmlp_eval_sample", c.condmlp_eval_sample},
                       {"w_load", c.w_load},
                       {"w_importance", c.w_importance},
                       {"lambda_z", c.lambda_z},
                       {"w_penalty", c.w_penalty},
                       {"bias_gamma", c.bias_gamma}};
    // Only pruned models carry it, so unpruned configs keep their JSON unchanged.
    if (!c.n_experts_by_layer.empty()) j["n_experts_by_layer"] = c.n_experts_by_layer;
}

void from_json(const nlohmann::json& j, GptConfig& c) {
    JsonReader r(j, "model");
    r.get("n_layer", c.n_layer);
    r.get("n_head", c.n_head);
    r.get("n_embd", c.n_embd);
    r.get("block_size", c.block_size);
    r.get("vocab_size", c.vocab_size);
    r.get("padded_vocab_size", c.padded_vocab_size);
    r.get("mlp", c.mlp);
    r.get("attn", c.attn);
    r.get("n_experts", c.n_experts);
    r.get("top_k", c.top_k);
    r.get("expert_hidden", c.expert_hidden);
    r.get("moe_every", c.moe_every);
    r.get("capacity_factor", c.capacity_factor);
    r.get("eval_capacity_factor", c.eval_capacity_factor);
    r.get("condmlp_eval_sample", c.condmlp_eval_sample);
    r.get("w_load", c.w_load);
    r.get("w_importance", c.w_importance);
    r.get("lambda_z", c.lambda_z);
    r.get("w_penalty", c.w_penalty);
    r.get("bias_gamma", c.bias_gamma);
    r.get("n_experts_by_layer", c.n_experts_by_layer);
    r.finish();
}

}  // namespace greenmoe

// GptModel: layout, initialisation, forward and backward (see gpt.h).
#include "greenmoe/model/gpt.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/nn/attention.h"
#include "greenmoe/nn/cross_entropy.h"
#include "greenmoe/nn/encoder.h"
#include "greenmoe/nn/gelu.h"
#include "greenmoe/nn/layernorm.h"
#include "greenmoe/nn/matmul.h"
#include "greenmoe/nn/residual.h"

namespace greenmoe {

namespace {

std::string block_name(int layer, const char* suffix) {
    return "transformer.h." + std::to_string(layer) + "." + suffix;
}

constexpr uint64_t kInitStream = 0x696e6974;  // "init"

}  // namespace

GptModel::GptModel(GptConfig config, int max_batch, int max_seq)
    : config_(config), max_batch_(max_batch), max_seq_(max_seq) {
    config_.finalize();
    check(max_batch >= 1, "batch size must be ≥ 1, got {}", max_batch);
    check(max_seq >= 1 && max_seq <= config_.block_size,
          "sequence length must be in [1, block_size = {}], got {}", config_.block_size, max_seq);
    layout_ = gpt_param_layout(config_);
    params_.reset(layout_.total_floats());
    grads_.reset(layout_.total_floats());
    p_ = bind(params_.data());
    g_ = bind(grads_.data());
    allocate_activations();
}

ParamLayout gpt_param_layout(const GptConfig& config) {
    ParamLayout layout;
    const int64_t C = config.n_embd, Vp = config.padded_vocab_size;
    layout.add("transformer.wte.weight", {Vp, C});
    layout.add("transformer.wpe.weight", {config.block_size, C});
    for (int l = 0; l < config.n_layer; ++l) {
        layout.add(block_name(l, "ln_1.weight"), {C});
        layout.add(block_name(l, "ln_1.bias"), {C});
        if (config.is_moa_block(l)) {
            const int64_t E = config.n_experts;
            layout.add(block_name(l, "attn.c_kv.weight"), {2 * C, C});
            layout.add(block_name(l, "attn.c_kv.bias"), {2 * C});
            layout.add(block_name(l, "attn.router.weight"), {E, C});
            layout.add(block_name(l, "attn.noise.weight"), {E, C});
            layout.add(block_name(l, "attn.q_experts.weight"), {E, C, C});
            layout.add(block_name(l, "attn.q_experts.bias"), {E, C});
            layout.add(block_name(l, "attn.o_experts.weight"), {E, C, C});
            layout.add(block_name(l, "attn.o_experts.bias"), {E, C});
        } else {
            layout.add(block_name(l, "attn.c_attn.weight"), {3 * C, C});
            layout.add(block_name(l, "attn.c_attn.bias"), {3 * C});
            layout.add(block_name(l, "attn.c_proj.weight"), {C, C});
            layout.add(block_name(l, "attn.c_proj.bias"), {C});
        }
        layout.add(block_name(l, "ln_2.weight"), {C});
        layout.add(block_name(l, "ln_2.bias"), {C});
        if (!config.is_moe_block(l)) {
            layout.add(block_name(l, "mlp.c_fc.weight"), {4 * C, C});
            layout.add(block_name(l, "mlp.c_fc.bias"), {4 * C});
            layout.add(block_name(l, "mlp.c_proj.weight"), {C, 4 * C});
            layout.add(block_name(l, "mlp.c_proj.bias"), {C});
            continue;
        }
        const int64_t E = config.mlp_experts(l), H = config.hidden();
        if (config.mlp == "condmlp") {
            layout.add(block_name(l, "mlp.c_fc.weight"), {H, C});
            layout.add(block_name(l, "mlp.c_proj.weight"), {C, H});
            layout.add(block_name(l, "mlp.b_fc"), {E, H});
            layout.add(block_name(l, "mlp.b_proj"), {E, C});
            layout.add(block_name(l, "mlp.guesser.weight"), {E, C});
            layout.add(block_name(l, "mlp.guesser.bias"), {E});
            continue;
        }
        layout.add(block_name(l, "mlp.router.weight"), {E, C});
        if (config.mlp == "olnn") layout.add(block_name(l, "mlp.noise.weight"), {E, C});
        layout.add(block_name(l, "mlp.experts.c_fc.weight"), {E, H, C});
        layout.add(block_name(l, "mlp.experts.c_fc.bias"), {E, H});
        layout.add(block_name(l, "mlp.experts.c_proj.weight"), {E, C, H});
        layout.add(block_name(l, "mlp.experts.c_proj.bias"), {E, C});
    }
    layout.add("transformer.ln_f.weight", {C});
    layout.add("transformer.ln_f.bias", {C});
    return layout;
}

GptTensors GptModel::bind(float* base) const {
    auto at = [&](const std::string& name) { return base + layout_.get(name).offset; };
    auto maybe = [&](const std::string& name) -> float* {
        const ParamSpec* spec = layout_.find(name);
        return spec ? base + spec->offset : nullptr;
    };
    GptTensors t;
    t.wte = at("transformer.wte.weight");
    t.wpe = at("transformer.wpe.weight");
    for (int l = 0; l < config_.n_layer; ++l) {
        BlockTensors b;
        b.ln1_w = at(block_name(l, "ln_1.weight"));
        b.ln1_b = at(block_name(l, "ln_1.bias"));
        b.qkv_w = maybe(block_name(l, "attn.c_attn.weight"));
        b.qkv_b = maybe(block_name(l, "attn.c_attn.bias"));
        b.attn_proj_w = maybe(block_name(l, "attn.c_proj.weight"));
        b.attn_proj_b = maybe(block_name(l, "attn.c_proj.bias"));
        if (config_.is_moa_block(l)) {
            b.moa.kv_w = at(block_name(l, "attn.c_kv.weight"));
            b.moa.kv_b = at(block_name(l, "attn.c_kv.bias"));
            b.moa.router_w = at(block_name(l, "attn.router.weight"));
            b.moa.noise_w = at(block_name(l, "attn.noise.weight"));
            b.moa.q_w = at(block_name(l, "attn.q_experts.weight"));
            b.moa.q_b = at(block_name(l, "attn.q_experts.bias"));
            b.moa.o_w = at(block_name(l, "attn.o_experts.weight"));
            b.moa.o_b = at(block_name(l, "attn.o_experts.bias"));
        }
        b.ln2_w = at(block_name(l, "ln_2.weight"));
        b.ln2_b = at(block_name(l, "ln_2.bias"));
        b.fc_w = b.fc_b = b.fc_proj_w = b.fc_proj_b = nullptr;
        if (!config_.is_moe_block(l)) {
            b.fc_w = at(block_name(l, "mlp.c_fc.weight"));
            b.fc_b = at(block_name(l, "mlp.c_fc.bias"));
            b.fc_proj_w = at(block_name(l, "mlp.c_proj.weight"));
            b.fc_proj_b = at(block_name(l, "mlp.c_proj.bias"));
        } else if (config_.mlp == "condmlp") {
            b.moe.fc_w = at(block_name(l, "mlp.c_fc.weight"));
            b.moe.proj_w = at(block_name(l, "mlp.c_proj.weight"));
            b.moe.fc_b = at(block_name(l, "mlp.b_fc"));
            b.moe.proj_b = at(block_name(l, "mlp.b_proj"));
            b.moe.guess_w = at(block_name(l, "mlp.guesser.weight"));
            b.moe.guess_b = at(block_name(l, "mlp.guesser.bias"));
        } else {
            b.moe.router_w = at(block_name(l, "mlp.router.weight"));
            b.moe.noise_w = maybe(block_name(l, "mlp.noise.weight"));
            b.moe.fc_w = at(block_name(l, "mlp.experts.c_fc.weight"));
            b.moe.fc_b = at(block_name(l, "mlp.experts.c_fc.bias"));
            b.moe.proj_w = at(block_name(l, "mlp.experts.c_proj.weight"));
            b.moe.proj_b = at(block_name(l, "mlp.experts.c_proj.bias"));
        }
        t.blocks.push_back(b);
    }
    t.lnf_w = at("transformer.ln_f.weight");
    t.lnf_b = at("transformer.ln_f.bias");
    return t;
}

void GptModel::allocate_activations() {
    const size_t B = max_batch_, T = max_seq_, C = config_.n_embd, NH = config_.n_head;
    const size_t Vp = config_.padded_vocab_size, L = config_.n_layer, BT = B * T;
    // Two passes over the same list: first count, then hand out pointers, so the sizes
    // are written down once.
    size_t total = 0;
    float* base = nullptr;
    auto take = [&](size_t n) {
        const size_t offset = total;
        total += (n + 15) / 16 * 16;
        return base ? base + offset : nullptr;
    };
    for (int pass = 0; pass < 2; ++pass) {
        total = 0;
        Activations& a = acts_;
        a = Activations{};
        a.encoded = take(BT * C);
        for (size_t l = 0; l < L; ++l) {
            a.ln1.push_back(take(BT * C));
            a.ln1_mean.push_back(take(BT));
            a.ln1_rstd.push_back(take(BT));
            const bool mha = !config_.is_moa_block(static_cast<int>(l));
            a.qkv.push_back(mha ? take(BT * 3 * C) : nullptr);
            a.atty.push_back(mha ? take(BT * C) : nullptr);
            a.att.push_back(mha ? take(B * NH * T * T) : nullptr);
            a.residual2.push_back(take(BT * C));
            a.ln2.push_back(take(BT * C));
            a.ln2_mean.push_back(take(BT));
            a.ln2_rstd.push_back(take(BT));
            const bool dense = !config_.is_moe_block(static_cast<int>(l));
            a.fch.push_back(dense ? take(BT * 4 * C) : nullptr);
            a.fch_gelu.push_back(dense ? take(BT * 4 * C) : nullptr);
            a.residual3.push_back(take(BT * C));
        }
        a.lnf = take(BT * C);
        a.lnf_mean = take(BT);
        a.lnf_rstd = take(BT);
        a.logits = take(BT * Vp);
        a.losses = take(BT);
        a.dresidual = take(BT * C);
        a.dln = take(BT * C);
        a.dqkv = take(BT * 3 * C);
        a.datty = take(BT * C);
        a.dfch = take(BT * 4 * C);
        a.dfch_gelu = take(BT * 4 * C);
        a.datt_scratch = take(B * NH * T * T);
        if (pass == 0) {
            act_memory_.reset(total);
            base = act_memory_.data();
        }
    }
    tokens_.resize(BT);
    targets_.resize(BT);
    moe_.resize(L);
    moa_.resize(L);
    mlp_slot_.assign(L, -1);
    attn_slot_.assign(L, -1);
    for (int l = 0; l < config_.n_layer; ++l) {
        if (config_.is_moa_block(l)) {
            moa_[l] = std::make_unique<MoaAttention>(config_, max_batch_, max_seq_);
        }
        if (config_.is_moe_block(l)) {
            // A pruned block routes over its own experts only.
            GptConfig block_config = config_;
            block_config.n_experts = config_.mlp_experts(l);
            moe_[l] = std::make_unique<MoeMlp>(block_config, static_cast<int>(BT));
        }
    }
    moe_slots_ = config_.routed_slots();
    for (int i = 0; i < num_moe_layers(); ++i) {
        (moe_slots_[i].attention ? attn_slot_ : mlp_slot_)[moe_slots_[i].block] = i;
    }
    moe_row_offset_.assign(1, 0);
    for (const GptConfig::RoutedSlot& slot : moe_slots_) {
        moe_row_offset_.push_back(moe_row_offset_.back() + size_t(slot.experts));
    }
    moe_bias_.reset(moe_row_offset_.back());
    moe_counts_.assign(moe_row_offset_.back(), 0);
    aux_weights_ = {config_.w_load, config_.w_importance, config_.lambda_z, config_.w_penalty};
}

const MoeForwardStats& GptModel::moe_stats(int i) const {
    const GptConfig::RoutedSlot& slot = moe_slots_[i];
    return slot.attention ? moa_[slot.block]->stats() : moe_[slot.block]->stats();
}

void GptModel::set_capacity_limits(bool enabled) {
    for (auto& moe : moe_) {
        if (moe) moe->set_capacity_limits(enabled);
    }
}

const float* GptModel::moe_bias_row(int block, bool attention) const {
    const int slot = attention ? attn_slot_[block] : mlp_slot_[block];
    return slot < 0 ? nullptr : moe_slot_bias(slot);
}

std::vector<int64_t> GptModel::moe_bias_shape() const {
    return config_.moe_bias_shape();
}

void GptModel::freeze_moe_routing(bool frozen) {
    for (auto& m : moe_) {
        if (m) m->freeze_routing(frozen);
    }
    for (auto& m : moa_) {
        if (m) m->freeze_routing(frozen);
    }
}

void GptModel::update_moe_bias(float gamma) {
    for (size_t i = 0; i < moe_slots_.size(); ++i) {
        const int E = moe_slots_[i].experts;
        int64_t* c = moe_counts_.data() + moe_row_offset_[i];
        float* b = moe_bias_.data() + moe_row_offset_[i];
        double mean = 0.0;
        for (int e = 0; e < E; ++e) mean += static_cast<double>(c[e]);
        mean /= E;
        if (gamma > 0 && mean > 0) {
            for (int e = 0; e < E; ++e) {
                if (c[e] > 1.2 * mean) b[e] -= gamma;
                if (c[e] < 0.8 * mean) b[e] += gamma;
            }
        }
        std::fill(c, c + E, 0);
    }
}

void GptModel::init_weights(uint64_t seed) {
    params_.zero();
    const float residual_std = 0.02f / std::sqrt(2.0f * static_cast<float>(config_.n_layer));
    const auto& specs = layout_.specs();
    for (size_t i = 0; i < specs.size(); ++i) {
        const ParamSpec& s = specs[i];
        float* w = params_.data() + s.offset;
        const std::string& n = s.name;
        // Biases, and condmlp's per-path bias pairs (learned embeddings initialised like
        // biases), start at zero.
        const bool is_bias = n.ends_with(".bias") || n.ends_with(".b_fc") || n.ends_with(".b_proj");
        const bool is_ln = n.find(".ln_") != std::string::npos;
        if (is_ln && !is_bias) {
            for (size_t j = 0; j < s.numel; ++j) w[j] = 1.0f;
            continue;
        }
        if (is_bias) continue;  // zeros
        // Every projection back into the residual stream (attention, MLP, experts).
        const bool residual = n.ends_with("c_proj.weight") || n.ends_with("o_experts.weight");
        const float std = residual ? residual_std : 0.02f;
        size_t count = s.numel;
        // Padded vocabulary rows stay zero: they never receive a gradient either.
        if (w == p_.wte) count = static_cast<size_t>(config_.vocab_size) * config_.n_embd;
        const uint64_t key = rng_key(seed, kInitStream, i);
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < count; ++j) w[j] = std * rng_normal(key, j);
    }
}

void GptModel::check_tokens(const int* tokens, const int* targets, int n) const {
    const int V = config_.vocab_size;
    for (int i = 0; i < n; ++i) {
        check(tokens[i] >= 0 && tokens[i] < V, "token id {} at position {} is outside [0, {})",
              tokens[i], i, V);
        if (targets) {
            check(targets[i] < V, "target id {} at position {} is outside [0, {})", targets[i], i,
                  V);
        }
    }
}

float GptModel::forward(const int* tokens, const int* targets, int B, int T) {
    check(B >= 1 && B <= max_batch_ && T >= 1 && T <= max_seq_,
          "forward: batch {}×{} exceeds the allocated {}×{}", B, T, max_batch_, max_seq_);
    const int C = config_.n_embd, NH = config_.n_head, L = config_.n_layer;
    const int V = config_.vocab_size, Vp = config_.padded_vocab_size, BT = B * T;
    check_tokens(tokens, targets, BT);
    B_ = B;
    T_ = T;
    std::memcpy(tokens_.data(), tokens, sizeof(int) * BT);
    have_targets_ = targets != nullptr;
    if (targets) std::memcpy(targets_.data(), targets, sizeof(int) * BT);

    Activations& a = acts_;
    double aux_sum = 0.0;
    auto bias_row = [&](int slot) { return moe_bias_.data() + moe_row_offset_[size_t(slot)]; };
    // The balancing bias moves with the tokens routed in training steps only.
    auto count_routing = [&](int slot) {
        if (!training_) return;
        const auto& counts = moe_stats(slot).counts;
        int64_t* row = moe_counts_.data() + moe_row_offset_[size_t(slot)];
        for (int e = 0; e < moe_slots_[size_t(slot)].experts; ++e) row[e] += counts[e];
    };
    nn::encoder_forward(a.encoded, tokens, p_.wte, p_.wpe, B, T, C);
    for (int l = 0; l < L; ++l) {
        const BlockTensors& w = p_.blocks[l];
        const float* residual = l == 0 ? a.encoded : a.residual3[l - 1];
        nn::layernorm_forward(a.ln1[l], a.ln1_mean[l], a.ln1_rstd[l], residual, w.ln1_w, w.ln1_b,
                              BT, C);
        // residual2 first holds the attention output, then gets the residual added.
        if (moa_[l]) {
            const int slot = attn_slot_[l];
            moa_[l]->forward(a.residual2[l], a.ln1[l], w.moa, B, T, training_, bias_row(slot),
                             rng_key(rng_key_, static_cast<uint64_t>(l), 1));
            aux_sum += moa_[l]->aux_loss(aux_weights_);
            count_routing(slot);
        } else {
            nn::matmul_forward(a.qkv[l], a.ln1[l], w.qkv_w, w.qkv_b, BT, C, 3 * C);
            nn::attention_forward(a.atty[l], a.att[l], a.qkv[l], B, T, C, NH);
            nn::matmul_forward(a.residual2[l], a.atty[l], w.attn_proj_w, w.attn_proj_b, BT, C, C);
        }
        nn::residual_forward(a.residual2[l], a.residual2[l], residual, static_cast<size_t>(BT) * C);
        nn::layernorm_forward(a.ln2[l], a.ln2_mean[l], a.ln2_rstd[l], a.residual2[l], w.ln2_w,
                              w.ln2_b, BT, C);
        if (moe_[l]) {
            const int slot = mlp_slot_[l];
            moe_[l]->forward(a.residual3[l], a.ln2[l], w.moe, BT, training_, bias_row(slot),
                             rng_key(rng_key_, static_cast<uint64_t>(l)));
            aux_sum += moe_[l]->aux_loss(aux_weights_);
            count_routing(slot);
        } else {
            nn::matmul_forward(a.fch[l], a.ln2[l], w.fc_w, w.fc_b, BT, C, 4 * C);
            nn::gelu_forward(a.fch_gelu[l], a.fch[l], static_cast<size_t>(BT) * 4 * C);
            nn::matmul_forward(a.residual3[l], a.fch_gelu[l], w.fc_proj_w, w.fc_proj_b, BT, 4 * C,
                               C);
        }
        nn::residual_forward(a.residual3[l], a.residual3[l], a.residual2[l],
                             static_cast<size_t>(BT) * C);
    }
    aux_loss_ = moe_slots_.empty() ? 0.0 : aux_sum / static_cast<double>(moe_slots_.size());
    nn::layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, a.residual3[L - 1], p_.lnf_w, p_.lnf_b, BT,
                          C);
    nn::matmul_forward(a.logits, a.lnf, p_.wte, nullptr, BT, C, Vp);
    if (!targets) return std::numeric_limits<float>::quiet_NaN();

    nn::cross_entropy_forward_backward(a.losses, nullptr, a.logits, targets, BT, V, Vp, 0.0f);
    double sum = 0.0;
    int count = 0;
    for (int i = 0; i < BT; ++i) {
        if (targets[i] >= 0) {
            sum += a.losses[i];
            ++count;
        }
    }
    return count ? static_cast<float>(sum / count) : 0.0f;
}

void GptModel::backward(float loss_scale, const std::function<void(int block)>& block_done) {
    check(have_targets_, "backward() needs a forward() with targets first");
    const int B = B_, T = T_, BT = B * T;
    const int C = config_.n_embd, NH = config_.n_head, L = config_.n_layer;
    const int V = config_.vocab_size, Vp = config_.padded_vocab_size;
    const size_t nC = static_cast<size_t>(BT) * C;
    Activations& a = acts_;

    int count = 0;
    for (int i = 0; i < BT; ++i) count += targets_[i] >= 0;
    if (count == 0) return;
    const float dloss = loss_scale / static_cast<float>(count);
    // The logits buffer becomes its own gradient.
    nn::cross_entropy_forward_backward(a.losses, a.logits, a.logits, targets_.data(), BT, V, Vp,
                                       dloss);
    std::memset(a.dln, 0, nC * sizeof(float));
    nn::matmul_backward(a.dln, g_.wte, nullptr, a.logits, a.lnf, p_.wte, BT, C, Vp);
    std::memset(a.dresidual, 0, nC * sizeof(float));
    nn::layernorm_backward(a.dresidual, g_.lnf_w, g_.lnf_b, a.dln, a.residual3[L - 1], p_.lnf_w,
                           a.lnf_mean, a.lnf_rstd, BT, C);

    // dresidual holds the gradient of the residual stream as it flows down the layers;
    // each residual add passes it through unchanged, so branches just add into it.
    for (int l = L - 1; l >= 0; --l) {
        const BlockTensors& w = p_.blocks[l];
        const BlockTensors& dw = g_.blocks[l];
        const float* residual = l == 0 ? a.encoded : a.residual3[l - 1];

        // The auxiliary losses enter the total as their mean over routed layers.
        const float aux_scale =
            moe_slots_.empty() ? 0.0f : loss_scale / static_cast<float>(moe_slots_.size());
        std::memset(a.dln, 0, nC * sizeof(float));
        if (moe_[l]) {
            moe_[l]->backward(a.dln, dw.moe, a.dresidual, a.ln2[l], w.moe, aux_weights_, aux_scale);
        } else {
            std::memset(a.dfch_gelu, 0, nC * 4 * sizeof(float));
            nn::matmul_backward(a.dfch_gelu, dw.fc_proj_w, dw.fc_proj_b, a.dresidual, a.fch_gelu[l],
                                w.fc_proj_w, BT, 4 * C, C);
            std::memset(a.dfch, 0, nC * 4 * sizeof(float));
            nn::gelu_backward(a.dfch, a.fch[l], a.dfch_gelu, nC * 4);
            nn::matmul_backward(a.dln, dw.fc_w, dw.fc_b, a.dfch, a.ln2[l], w.fc_w, BT, C, 4 * C);
        }
        nn::layernorm_backward(a.dresidual, dw.ln2_w, dw.ln2_b, a.dln, a.residual2[l], w.ln2_w,
                               a.ln2_mean[l], a.ln2_rstd[l], BT, C);

        std::memset(a.dln, 0, nC * sizeof(float));
        if (moa_[l]) {
            moa_[l]->backward(a.dln, dw.moa, a.dresidual, a.ln1[l], w.moa, aux_weights_, aux_scale);
        } else {
            std::memset(a.datty, 0, nC * sizeof(float));
            nn::matmul_backward(a.datty, dw.attn_proj_w, dw.attn_proj_b, a.dresidual, a.atty[l],
                                w.attn_proj_w, BT, C, C);
            std::memset(a.dqkv, 0, nC * 3 * sizeof(float));
            nn::attention_backward(a.dqkv, a.datt_scratch, a.datty, a.qkv[l], a.att[l], B, T, C,
                                   NH);
            nn::matmul_backward(a.dln, dw.qkv_w, dw.qkv_b, a.dqkv, a.ln1[l], w.qkv_w, BT, C, 3 * C);
        }
        nn::layernorm_backward(a.dresidual, dw.ln1_w, dw.ln1_b, a.dln, residual, w.ln1_w,
                               a.ln1_mean[l], a.ln1_rstd[l], BT, C);
        if (block_done) block_done(l);
    }
    nn::encoder_backward(g_.wte, g_.wpe, a.dresidual, tokens_.data(), B, T, C);
    if (block_done) block_done(-1);
    // The logits were overwritten by their gradient: a second backward needs a new forward.
    have_targets_ = false;
}

std::pair<size_t, size_t> GptModel::block_grad_range(int block) const {
    check(block >= 0 && block < config_.n_layer, "block {} of {}", block, config_.n_layer);
    const auto first = [&](int l) {
        return l < config_.n_layer ? layout_.get(block_name(l, "ln_1.weight")).offset
                                   : layout_.get("transformer.ln_f.weight").offset;
    };
    return {first(block), first(block + 1)};
}

double GptModel::flops_per_token(int T) const {
    const double C = config_.n_embd, Vp = config_.padded_vocab_size;
    // Active matmul parameters per token: attention 4C², the MLP 8C² (dense), k experts of
    // 2·C·H plus the router for MoE blocks.
    double matmul_params = Vp * C;
    for (int l = 0; l < config_.n_layer; ++l) {
        if (config_.is_moa_block(l)) {
            // Shared K and V, and k query and output maps per token, plus the router.
            const double k = config_.top_k, E = config_.n_experts;
            matmul_params += 2.0 * C * C + k * 2.0 * C * C + 2.0 * E * C;
        } else {
            matmul_params += 4.0 * C * C;
        }
        if (!config_.is_moe_block(l)) {
            matmul_params += 8.0 * C * C;
        } else {
            const double H = config_.hidden(), E = config_.mlp_experts(l);
            const double k = config_.mlp == "condmlp" ? 1.0 : config_.choices_per_token();
            matmul_params += k * 2.0 * C * H + E * C * (config_.mlp == "olnn" ? 2.0 : 1.0);
        }
    }
    // Attention scores and mixing: 12·C·T per token and layer (moa: once per chosen expert).
    double attention = 0.0;
    for (int l = 0; l < config_.n_layer; ++l) {
        attention += 12.0 * C * T * (config_.is_moa_block(l) ? config_.top_k : 1);
    }
    return 6.0 * matmul_params + attention;
}

}  // namespace greenmoe

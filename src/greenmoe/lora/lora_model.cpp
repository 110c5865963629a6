// LoRA training's model pass: embeddings, blocks with activation checkpointing, the causal-LM
// loss and the backward pass (see lora_model.h).
#include "greenmoe/lora/lora_model.h"

#include <algorithm>
#include <cmath>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/hf/ops.h"
#include "greenmoe/lora/grad_ops.h"
#include "greenmoe/lora/lora_layers.h"

namespace greenmoe::lora {

namespace {

// Rows of the LM head's logits held at a time: [rows, vocabulary] floats.
constexpr int64_t kHeadRows = 64;

std::vector<float> zeros(int64_t count) {
    return std::vector<float>(static_cast<size_t>(count), 0.0f);
}

void check_batch(const hf::ModelConfig& c, const TokenBatch& b) {
    const auto n = static_cast<size_t>(b.rows * b.seq_len);
    check(b.rows > 0 && b.seq_len > 0 && b.ids.size() == n && b.labels.size() == n,
          "training batch: {} ids and {} labels for {} rows of {} tokens", b.ids.size(),
          b.labels.size(), b.rows, b.seq_len);
    for (size_t i = 0; i < n; ++i) {
        check(b.ids[i] >= 0 && b.ids[i] < c.vocab_size,
              "training batch: token id {} is outside the vocabulary (0..{}) of {}", b.ids[i],
              c.vocab_size - 1, c.source.string());
        check(b.labels[i] == kIgnoreLabel || (b.labels[i] >= 0 && b.labels[i] < c.vocab_size),
              "training batch: label {} is neither {} nor a token of the vocabulary (0..{})",
              b.labels[i], kIgnoreLabel, c.vocab_size - 1);
    }
}

// The target of row i (labels shifted by one within its sequence), or kIgnoreLabel.
int32_t target_of(const TokenBatch& b, int64_t i) {
    return i % b.seq_len == b.seq_len - 1 ? kIgnoreLabel : b.labels[static_cast<size_t>(i + 1)];
}

}  // namespace

int64_t TokenBatch::predicted_tokens() const {
    int64_t count = 0;
    for (int64_t i = 0; i < rows * seq_len; ++i) {
        if (i % seq_len != seq_len - 1 && labels[static_cast<size_t>(i + 1)] != kIgnoreLabel)
            ++count;
    }
    return count;
}

LoraModel::LoraModel(const hf::HfModel& model, LoraParams& params, double dropout)
    : model_(model), params_(params), dropout_(dropout), rope_(model.config().rope) {}

namespace {

struct Pass {
    const hf::HfModel& model;
    LoraParams& params;
    const hf::Rope& rope;
    double dropout;
    uint64_t key;
    const TokenBatch& batch;

    LayerContext layer(int l) const {
        const hf::ModelConfig& c = model.config();
        return LayerContext{c,
                            model.weights().layers[static_cast<size_t>(l)],
                            c.layers[static_cast<size_t>(l)],
                            rope,
                            params,
                            dropout,
                            rng_key(key, static_cast<uint64_t>(l)),
                            batch.rows,
                            batch.seq_len};
    }
};

// What one block keeps for its backward pass.
struct BlockTape {
    std::vector<float> a1, inv1, attn, mid, a2, inv2;
    AttentionTape attention;
    MlpTape mlp;
};

// h_out = h + r·attn(norm(h)); h_out += r·mlp(norm(h_out)). tape: null for no backward.
std::vector<float> block_forward(const LayerContext& ctx, const std::vector<float>& h,
                                 BlockTape* tape) {
    const hf::ModelConfig& c = ctx.config;
    const int64_t n = ctx.tokens(), hidden = c.hidden_size;
    const auto residual = static_cast<float>(c.residual_multiplier);
    BlockTape local;
    BlockTape& t = tape != nullptr ? *tape : local;
    t.a1.resize(h.size());
    t.inv1.resize(static_cast<size_t>(n));
    rms_norm_forward(h.data(), n, hidden, hidden, ctx.weights.input_norm, c.rms_norm_eps,
                     t.a1.data(), hidden, t.inv1.data());
    t.attn.resize(h.size());
    attention_forward(ctx, t.a1.data(), t.attn.data(), tape != nullptr ? &t.attention : nullptr);
    t.mid.resize(h.size());
    for (size_t i = 0; i < h.size(); ++i) t.mid[i] = h[i] + t.attn[i] * residual;
    t.a2.resize(h.size());
    t.inv2.resize(static_cast<size_t>(n));
    rms_norm_forward(t.mid.data(), n, hidden, hidden, ctx.weights.post_norm, c.rms_norm_eps,
                     t.a2.data(), hidden, t.inv2.data());
    std::vector<float> out(h.size());
    mlp_forward(ctx, t.a2.data(), out.data(), tape != nullptr ? &t.mlp : nullptr);
    for (size_t i = 0; i < h.size(); ++i) out[i] = t.mid[i] + out[i] * residual;
    return out;
}

// dh (the gradient of the block's output) becomes the gradient of its input h.
void block_backward(const LayerContext& ctx, const std::vector<float>& h, BlockTape& t,
                    std::vector<float>& dh) {
    const hf::ModelConfig& c = ctx.config;
    const int64_t n = ctx.tokens(), hidden = c.hidden_size;
    const auto residual = static_cast<float>(c.residual_multiplier);
    std::vector<float> d_branch(dh.size()), d_norm = zeros(n * hidden);
    for (size_t i = 0; i < dh.size(); ++i) d_branch[i] = dh[i] * residual;
    mlp_backward(ctx, t.a2.data(), d_branch.data(), t.mlp, d_norm.data());
    rms_norm_backward(t.mid.data(), t.inv2.data(), d_norm.data(), n, hidden, hidden, hidden,
                      ctx.weights.post_norm, dh.data(), hidden);
    for (size_t i = 0; i < dh.size(); ++i) d_branch[i] = dh[i] * residual;
    std::fill(d_norm.begin(), d_norm.end(), 0.0f);
    attention_backward(ctx, t.a1.data(), d_branch.data(), t.attention, d_norm.data());
    rms_norm_backward(h.data(), t.inv1.data(), d_norm.data(), n, hidden, hidden, hidden,
                      ctx.weights.input_norm, dh.data(), hidden);
}

std::vector<float> embed(const hf::HfModel& model, const TokenBatch& b) {
    const hf::ModelConfig& c = model.config();
    const int64_t n = b.rows * b.seq_len, hidden = c.hidden_size;
    std::vector<float> h(static_cast<size_t>(n * hidden));
    for (int64_t i = 0; i < n; ++i)
        model.weights().embed.read_row(b.ids[static_cast<size_t>(i)], h.data() + i * hidden);
    if (c.embedding_multiplier != 1.0) {
        for (float& v : h) v *= static_cast<float>(c.embedding_multiplier);
    }
    return h;
}

// Σ cross-entropy of the final hidden states h against the shifted labels; with dh, also
// dh = loss_scale · d(Σ CE)/dh. The head runs kHeadRows rows at a time.
LossSum head_loss(const hf::HfModel& model, const TokenBatch& b, const std::vector<float>& h,
                  double loss_scale, std::vector<float>* dh) {
    const hf::ModelConfig& c = model.config();
    const hf::ModelWeights& w = model.weights();
    const int64_t n = b.rows * b.seq_len, hidden = c.hidden_size, vocab = c.vocab_size;
    const auto inv_scaling = static_cast<float>(1.0 / c.logits_scaling);
    LossSum result;
    std::vector<float> normed(static_cast<size_t>(kHeadRows * hidden)),
        inv(static_cast<size_t>(kHeadRows)), logits(static_cast<size_t>(kHeadRows * vocab)),
        d_normed(normed.size());
    for (int64_t r0 = 0; r0 < n; r0 += kHeadRows) {
        const int64_t m = std::min(kHeadRows, n - r0);
        bool any = false;
        for (int64_t i = r0; i < r0 + m; ++i) any = any || target_of(b, i) != kIgnoreLabel;
        if (!any) continue;
        const float* hr = h.data() + r0 * hidden;
        rms_norm_forward(hr, m, hidden, hidden, w.final_norm, c.rms_norm_eps, normed.data(), hidden,
                         inv.data());
        hf::linear(normed.data(), m, w.lm_head, logits.data());
        for (int64_t i = 0; i < m; ++i) {
            float* row = logits.data() + i * vocab;
            const int32_t target = target_of(b, r0 + i);
            if (target == kIgnoreLabel) {
                std::fill(row, row + vocab, 0.0f);
                continue;
            }
            if (c.logits_scaling != 1.0) {
                for (int64_t v = 0; v < vocab; ++v) row[v] *= inv_scaling;
            }
            float top = -INFINITY;
            for (int64_t v = 0; v < vocab; ++v) top = std::max(top, row[v]);
            double sum = 0.0;
            for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - top);
            result.sum += std::log(sum) + top - row[target];
            ++result.tokens;
            if (dh == nullptr) continue;
            // d CE / d logits = softmax − one-hot, through the 1/logits_scaling.
            const double g = loss_scale / c.logits_scaling;
            for (int64_t v = 0; v < vocab; ++v)
                row[v] = static_cast<float>(std::exp(double(row[v]) - top) / sum * g);
            row[target] -= static_cast<float>(g);
        }
        if (dh == nullptr) continue;
        std::fill(d_normed.begin(), d_normed.end(), 0.0f);
        linear_input_grad(logits.data(), m, w.lm_head, d_normed.data());
        rms_norm_backward(hr, inv.data(), d_normed.data(), m, hidden, hidden, hidden, w.final_norm,
                          dh->data() + r0 * hidden, hidden);
    }
    return result;
}

}  // namespace

LossSum LoraModel::forward_backward(const TokenBatch& batch, double loss_scale,
                                    uint64_t dropout_key) {
    const hf::ModelConfig& c = model_.config();
    check_batch(c, batch);
    const Pass pass{model_, params_, rope_, dropout_, dropout_key, batch};
    // Activation checkpointing: only each block's input is kept; a block's activations are
    // recomputed (same dropout masks, same routing) just before its backward pass.
    // The last block keeps its tape from the forward pass: its backward pass comes next.
    std::vector<std::vector<float>> inputs(static_cast<size_t>(c.num_layers) + 1);
    inputs[0] = embed(model_, batch);
    BlockTape tape;
    for (int l = 0; l < c.num_layers; ++l) {
        const bool last = l == c.num_layers - 1;
        inputs[size_t(l) + 1] =
            block_forward(pass.layer(l), inputs[size_t(l)], last ? &tape : nullptr);
    }
    std::vector<float> dh = zeros(static_cast<int64_t>(inputs.back().size()));
    const LossSum loss = head_loss(model_, batch, inputs.back(), loss_scale, &dh);
    inputs.back().clear();
    for (int l = c.num_layers - 1; l >= 0; --l) {
        const LayerContext ctx = pass.layer(l);
        if (l != c.num_layers - 1) {
            tape = BlockTape{};
            block_forward(ctx, inputs[size_t(l)], &tape);
        }
        block_backward(ctx, inputs[size_t(l)], tape, dh);
        inputs[size_t(l)].clear();
    }
    return loss;
}

LossSum LoraModel::loss(const TokenBatch& batch) const {
    const hf::ModelConfig& c = model_.config();
    check_batch(c, batch);
    const Pass pass{model_, params_, rope_, 0.0, 0, batch};
    std::vector<float> h = embed(model_, batch);
    for (int l = 0; l < c.num_layers; ++l) h = block_forward(pass.layer(l), h, nullptr);
    return head_loss(model_, batch, h, 0.0, nullptr);
}

}  // namespace greenmoe::lora

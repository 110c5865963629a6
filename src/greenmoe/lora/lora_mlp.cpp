// MLP blocks of LoRA training, dense and sparse, forward and backward (see lora_layers.h).
#include <algorithm>
#include <cmath>

#include "greenmoe/core/rng.h"
#include "greenmoe/hf/moe_block.h"
#include "greenmoe/hf/ops.h"
#include "greenmoe/lora/lora_layers.h"

namespace greenmoe::lora {

namespace {

const std::vector<float> kNoBias;

std::vector<float> zeros(int64_t count) {
    return std::vector<float>(static_cast<size_t>(count), 0.0f);
}

// One gated MLP over the rows in e.x: y = down(silu(gate(x)) · up(x)).
void gated_forward(const LayerContext& ctx, const hf::GatedMlp& m, int64_t rows,
                   MlpTape::Expert& e) {
    const int64_t* tokens = e.tokens.empty() ? nullptr : e.tokens.data();
    const int64_t inter = m.gate.rows, hidden = m.down.rows;
    e.g.resize(static_cast<size_t>(rows * inter));
    e.u.resize(e.g.size());
    e.act.resize(e.g.size());
    e.y.resize(static_cast<size_t>(rows * hidden));
    ctx.linear(m.gate, kNoBias).with_tokens(tokens).forward(e.x.data(), rows, e.g.data(), &e.gate);
    ctx.linear(m.up, kNoBias).with_tokens(tokens).forward(e.x.data(), rows, e.u.data(), &e.up);
    hf::silu_gate(e.g.data(), e.u.data(), rows * inter, e.act.data());
    ctx.linear(m.down, kNoBias)
        .with_tokens(tokens)
        .forward(e.act.data(), rows, e.y.data(), &e.down);
}

// dx [rows, hidden] += the input gradient of gated_forward given dy [rows, hidden].
void gated_backward(const LayerContext& ctx, const hf::GatedMlp& m, int64_t rows,
                    MlpTape::Expert& e, const float* dy, float* dx) {
    const int64_t inter = m.gate.rows;
    const int64_t* tokens = e.tokens.empty() ? nullptr : e.tokens.data();
    std::vector<float> dact = zeros(rows * inter), dg(dact.size()), du(dact.size());
    ctx.linear(m.down, kNoBias)
        .with_tokens(tokens)
        .backward(e.act.data(), dy, rows, e.down, dact.data());
    silu_gate_backward(e.g.data(), e.u.data(), dact.data(), rows * inter, dg.data(), du.data());
    ctx.linear(m.gate, kNoBias)
        .with_tokens(tokens)
        .backward(e.x.data(), dg.data(), rows, e.gate, dx);
    ctx.linear(m.up, kNoBias).with_tokens(tokens).backward(e.x.data(), du.data(), rows, e.up, dx);
}

// The routing scores the weights were taken from: softmax or sigmoid of the router logits.
std::vector<float> routing_scores(const hf::MoeConfig& c, const float* logits, int n_experts) {
    std::vector<float> s(logits, logits + n_experts);
    if (c.scoring == hf::Scoring::Softmax) {
        hf::softmax(s.data(), n_experts);
    } else {
        for (float& v : s) v = 1.0f / (1.0f + std::exp(-v));
    }
    return s;
}

void moe_forward(const LayerContext& ctx, const float* x, float* out, MlpTape& t) {
    const hf::ModelConfig& c = ctx.config;
    const hf::MoeWeights& w = ctx.weights.moe;
    const int64_t n = ctx.tokens(), hidden = c.hidden_size;
    const int n_experts = static_cast<int>(w.experts.size());
    t.logits.resize(static_cast<size_t>(n * n_experts));
    ctx.linear(w.router, kNoBias).forward(x, n, t.logits.data(), &t.router);
    // The engine's own rule chooses the experts (held in the backward pass).
    const hf::Routing r = hf::route(c.moe, w, t.logits.data(), n, n_experts);
    t.chosen = r.experts;
    t.weights = r.weights;
    t.experts.assign(static_cast<size_t>(n_experts), {});
    for (size_t i = 0; i < r.experts.size(); ++i) {
        t.experts[static_cast<size_t>(r.experts[i])].slots.push_back(static_cast<int64_t>(i));
    }
    const int top_k = r.top_k;
    std::vector<float> slots(r.experts.size() * static_cast<size_t>(hidden));
#pragma omp parallel for schedule(dynamic) if (n_experts > 1 && n * hidden >= (1 << 14))
    for (int e = 0; e < n_experts; ++e) {
        MlpTape::Expert& ex = t.experts[static_cast<size_t>(e)];
        const auto m = static_cast<int64_t>(ex.slots.size());
        if (m == 0) continue;
        ex.x.resize(static_cast<size_t>(m * hidden));
        ex.tokens.resize(static_cast<size_t>(m));
        for (int64_t j = 0; j < m; ++j) {
            ex.tokens[size_t(j)] = ex.slots[size_t(j)] / top_k;
            std::copy_n(x + ex.tokens[size_t(j)] * hidden, hidden, ex.x.data() + j * hidden);
        }
        gated_forward(ctx, w.experts[static_cast<size_t>(e)], m, ex);
        for (int64_t j = 0; j < m; ++j) {
            std::copy_n(ex.y.data() + j * hidden, hidden,
                        slots.data() + ex.slots[size_t(j)] * hidden);
        }
    }
    // Summed per token in slot order, as the engine sums them.
    for (int64_t i = 0; i < n; ++i) {
        float* o = out + i * hidden;
        std::fill(o, o + hidden, 0.0f);
        for (int k = 0; k < top_k; ++k) {
            const int64_t slot = i * top_k + k;
            const float weight = t.weights[size_t(slot)];
            const float* y = slots.data() + slot * hidden;
            for (int64_t d = 0; d < hidden; ++d) o[d] += weight * y[d];
        }
    }
    if (w.shared.gate.empty()) return;
    t.shared.x.assign(x, x + n * hidden);
    gated_forward(ctx, w.shared, n, t.shared);
    t.shared_gate_logit.assign(static_cast<size_t>(n), 0.0f);
    if (!w.shared_gate.empty()) {
        ctx.linear(w.shared_gate, kNoBias)
            .forward(x, n, t.shared_gate_logit.data(), &t.shared_gate);
    }
    for (int64_t i = 0; i < n; ++i) {
        const float gate = w.shared_gate.empty()
                               ? 1.0f
                               : 1.0f / (1.0f + std::exp(-t.shared_gate_logit[size_t(i)]));
        for (int64_t d = 0; d < hidden; ++d)
            out[i * hidden + d] += gate * t.shared.y[static_cast<size_t>(i * hidden + d)];
    }
}

void moe_backward(const LayerContext& ctx, const float* x, const float* dout, MlpTape& t,
                  float* dx) {
    const hf::ModelConfig& c = ctx.config;
    const hf::MoeConfig& mc = c.moe;
    const hf::MoeWeights& w = ctx.weights.moe;
    const int64_t n = ctx.tokens(), hidden = c.hidden_size;
    const int n_experts = static_cast<int>(w.experts.size());
    const int top_k = mc.top_k;
    // Gradients of the routing weights (dout · expert output) and of the experts' outputs
    // (weight · dout), then each expert's backward pass over its rows.
    std::vector<float> d_weight(t.weights.size(), 0.0f);
    std::vector<std::vector<float>> d_x(static_cast<size_t>(n_experts));
#pragma omp parallel for schedule(dynamic) if (n_experts > 1 && n * hidden >= (1 << 14))
    for (int e = 0; e < n_experts; ++e) {
        MlpTape::Expert& ex = t.experts[static_cast<size_t>(e)];
        const auto m = static_cast<int64_t>(ex.slots.size());
        if (m == 0) continue;
        std::vector<float> dy(static_cast<size_t>(m * hidden));
        for (int64_t j = 0; j < m; ++j) {
            const int64_t slot = ex.slots[size_t(j)], token = slot / top_k;
            const float* g = dout + token * hidden;
            const float* y = ex.y.data() + j * hidden;
            const float weight = t.weights[size_t(slot)];
            double dot = 0.0;
            for (int64_t d = 0; d < hidden; ++d) {
                dot += double(g[d]) * y[d];
                dy[size_t(j * hidden + d)] = weight * g[d];
            }
            d_weight[size_t(slot)] = static_cast<float>(dot);
        }
        d_x[size_t(e)].assign(static_cast<size_t>(m * hidden), 0.0f);
        gated_backward(ctx, w.experts[static_cast<size_t>(e)], m, ex, dy.data(),
                       d_x[size_t(e)].data());
    }
    for (int e = 0; e < n_experts; ++e) {
        const MlpTape::Expert& ex = t.experts[static_cast<size_t>(e)];
        for (size_t j = 0; j < ex.slots.size(); ++j) {
            float* dst = dx + ex.slots[j] / top_k * hidden;
            const float* src = d_x[size_t(e)].data() + j * static_cast<size_t>(hidden);
            for (int64_t d = 0; d < hidden; ++d) dst[d] += src[d];
        }
    }
    // Routing weights → scores (through the normalisation) → router logits.
    std::vector<float> d_logits = zeros(n * n_experts);
    for (int64_t i = 0; i < n; ++i) {
        const std::vector<float> s = routing_scores(mc, t.logits.data() + i * n_experts, n_experts);
        const int* chosen = t.chosen.data() + i * top_k;
        const float* dw = d_weight.data() + i * top_k;
        std::vector<double> ds(static_cast<size_t>(n_experts), 0.0);
        if (mc.normalize) {
            double z = 0.0, dot = 0.0;
            for (int k = 0; k < top_k; ++k) {
                z += s[size_t(chosen[k])];
                dot += double(dw[k]) * s[size_t(chosen[k])];
            }
            z += 1e-20;
            for (int k = 0; k < top_k; ++k)
                ds[size_t(chosen[k])] += mc.scale * (dw[k] / z - dot / (z * z));
        } else {
            for (int k = 0; k < top_k; ++k) ds[size_t(chosen[k])] += mc.scale * dw[k];
        }
        float* dl = d_logits.data() + i * n_experts;
        if (mc.scoring == hf::Scoring::Softmax) {
            double dot = 0.0;
            for (int e = 0; e < n_experts; ++e) dot += ds[size_t(e)] * s[size_t(e)];
            for (int e = 0; e < n_experts; ++e)
                dl[e] = static_cast<float>(s[size_t(e)] * (ds[size_t(e)] - dot));
        } else {
            for (int e = 0; e < n_experts; ++e)
                dl[e] = static_cast<float>(ds[size_t(e)] * s[size_t(e)] * (1.0 - s[size_t(e)]));
        }
    }
    ctx.linear(w.router, kNoBias).backward(x, d_logits.data(), n, t.router, dx);
    if (w.shared.gate.empty()) return;
    // out += σ(gate logit) · shared(x).
    std::vector<float> dy(static_cast<size_t>(n * hidden)), d_gate = zeros(n);
    for (int64_t i = 0; i < n; ++i) {
        const bool gated = !w.shared_gate.empty();
        const float gate = gated ? 1.0f / (1.0f + std::exp(-t.shared_gate_logit[size_t(i)])) : 1.0f;
        double dot = 0.0;
        for (int64_t d = 0; d < hidden; ++d) {
            const size_t at = static_cast<size_t>(i * hidden + d);
            dy[at] = gate * dout[at];
            dot += double(dout[at]) * t.shared.y[at];
        }
        if (gated) d_gate[size_t(i)] = static_cast<float>(dot * gate * (1.0 - gate));
    }
    gated_backward(ctx, w.shared, n, t.shared, dy.data(), dx);
    if (!w.shared_gate.empty()) {
        ctx.linear(w.shared_gate, kNoBias).backward(x, d_gate.data(), n, t.shared_gate, dx);
    }
}

}  // namespace

AdaptedLinear LayerContext::linear(const hf::Mat& w, const std::vector<float>& bias) const {
    int64_t row0 = 0;
    const LoraTarget* target = params.find(w, &row0);
    // One mask per module and token: the bands of one target share theirs, as PEFT drops
    // out the module's input once.
    const auto index =
        target != nullptr ? static_cast<uint64_t>(target - params.targets().data()) : ~uint64_t{0};
    return AdaptedLinear(w, bias, target, row0, &params, dropout, rng_key(key, index));
}

void mlp_forward(const LayerContext& ctx, const float* x, float* out, MlpTape* tape) {
    MlpTape local;
    MlpTape& t = tape != nullptr ? *tape : local;
    if (ctx.layer.n_experts > 0) return moe_forward(ctx, x, out, t);
    const int64_t n = ctx.tokens(), hidden = ctx.config.hidden_size;
    t.experts.assign(1, {});
    t.experts[0].x.assign(x, x + n * hidden);
    gated_forward(ctx, ctx.weights.mlp, n, t.experts[0]);
    std::copy(t.experts[0].y.begin(), t.experts[0].y.end(), out);
}

void mlp_backward(const LayerContext& ctx, const float* x, const float* dout, MlpTape& tape,
                  float* dx) {
    if (ctx.layer.n_experts > 0) return moe_backward(ctx, x, dout, tape, dx);
    gated_backward(ctx, ctx.weights.mlp, ctx.tokens(), tape.experts[0], dout, dx);
}

}  // namespace greenmoe::lora

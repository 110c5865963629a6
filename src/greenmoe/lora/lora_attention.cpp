// Attention blocks of LoRA training, forward and backward (see lora_layers.h).
#include <algorithm>

#include "greenmoe/lora/lora_layers.h"

namespace greenmoe::lora {

namespace {

const std::vector<float> kNoBias;
// q_a_layernorm and kv_a_layernorm keep RMSNorm's default epsilon (as the engine does).
constexpr double kLatentNormEps = 1e-6;

std::vector<float> zeros(int64_t count) {
    return std::vector<float>(static_cast<size_t>(count), 0.0f);
}

// Rotates (transposed: rotates back) the rope part, `offset` values in, of each of the
// tokens × heads vectors of `stride` values in x.
void rope_rows(const LayerContext& ctx, float* x, int64_t heads, int64_t stride, int64_t offset,
               bool transposed) {
    const int64_t n = ctx.tokens();
#pragma omp parallel for schedule(static) if (n * heads >= 4096)
    for (int64_t i = 0; i < n; ++i) {
        const int64_t pos = i % ctx.seq_len;
        for (int64_t h = 0; h < heads; ++h) {
            float* v = x + (i * heads + h) * stride + offset;
            if (transposed) {
                ctx.rope.apply_transposed(v, pos);
            } else {
                ctx.rope.apply(v, pos);
            }
        }
    }
}

AttentionShape shape(const LayerContext& ctx, int64_t hq, int64_t hkv, int64_t kd, int64_t vd) {
    return AttentionShape{
        ctx.seq_len, hq, hkv, kd, vd, ctx.config.attention_scale, ctx.layer.sliding_window};
}

// The core attention of every sequence of the batch, over the tape's q, k, v.
void attend_all(const LayerContext& ctx, const AttentionShape& s, AttentionTape& t) {
    const int64_t T = ctx.seq_len;
    t.o = zeros(ctx.tokens() * s.hq * s.vd);
    t.probs.resize(static_cast<size_t>(ctx.rows * s.hq * T * T));
    for (int64_t r = 0; r < ctx.rows; ++r) {
        attention_forward(s, t.q.data() + r * T * s.hq * s.kd, t.k.data() + r * T * s.hkv * s.kd,
                          t.v.data() + r * T * s.hkv * s.vd, t.o.data() + r * T * s.hq * s.vd,
                          t.probs.data() + r * s.hq * T * T);
    }
}

void attend_all_backward(const LayerContext& ctx, const AttentionShape& s, const AttentionTape& t,
                         const float* d_o, float* dq, float* dk, float* dv) {
    const int64_t T = ctx.seq_len;
    for (int64_t r = 0; r < ctx.rows; ++r) {
        attention_backward(s, t.q.data() + r * T * s.hq * s.kd, t.k.data() + r * T * s.hkv * s.kd,
                           t.v.data() + r * T * s.hkv * s.vd, t.probs.data() + r * s.hq * T * T,
                           d_o + r * T * s.hq * s.vd, dq + r * T * s.hq * s.kd,
                           dk + r * T * s.hkv * s.kd, dv + r * T * s.hkv * s.vd);
    }
}

// Rows and width of a q/k norm: the whole projection (OLMoE) or each head (Qwen3).
std::pair<int64_t, int64_t> qk_norm_rows(const hf::ModelConfig& c, int64_t n, int64_t heads) {
    if (c.qk_norm == hf::QkNorm::Whole) return {n, heads * c.head_dim};
    return {n * heads, c.head_dim};
}

// The q/k norm in place, keeping the projection before it and each row's 1/rms.
void qk_norm_forward(const hf::ModelConfig& c, std::vector<float>& x, int64_t n, int64_t heads,
                     const std::vector<float>& weight, std::vector<float>& raw,
                     std::vector<float>& inv) {
    if (c.qk_norm == hf::QkNorm::None) return;
    raw = x;
    const auto [rows, dim] = qk_norm_rows(c, n, heads);
    inv.resize(static_cast<size_t>(rows));
    rms_norm_forward(raw.data(), rows, dim, dim, weight, c.rms_norm_eps, x.data(), dim, inv.data());
}

// The gradient before the q/k norm from the one after it.
std::vector<float> qk_norm_backward(const hf::ModelConfig& c, std::vector<float> d, int64_t n,
                                    int64_t heads, const std::vector<float>& weight,
                                    const std::vector<float>& raw, const std::vector<float>& inv) {
    if (c.qk_norm == hf::QkNorm::None) return d;
    const auto [rows, dim] = qk_norm_rows(c, n, heads);
    std::vector<float> out(d.size(), 0.0f);
    rms_norm_backward(raw.data(), inv.data(), d.data(), rows, dim, dim, dim, weight, out.data(),
                      dim);
    return out;
}

void clip_forward(float clip, std::vector<float>& x, std::vector<float>& pre) {
    pre = x;
    for (float& f : x) f = std::clamp(f, -clip, clip);
}

// torch.clamp's gradient: passed where the input was inside [−clip, clip] (ends included).
void clip_backward(float clip, const std::vector<float>& pre, std::vector<float>& d) {
    for (size_t i = 0; i < d.size(); ++i) {
        if (pre[i] < -clip || pre[i] > clip) d[i] = 0.0f;
    }
}

void standard_forward(const LayerContext& ctx, const float* x, float* out, AttentionTape& t) {
    const hf::ModelConfig& c = ctx.config;
    const hf::AttentionWeights& w = ctx.weights.attention;
    const int64_t n = ctx.tokens(), hd = c.head_dim, nq = c.num_heads, nkv = c.num_kv_heads;
    t.q.resize(static_cast<size_t>(n * nq * hd));
    t.k.resize(static_cast<size_t>(n * nkv * hd));
    t.v.resize(t.k.size());
    ctx.linear(w.q, w.q_bias).forward(x, n, t.q.data(), &t.lin_q);
    ctx.linear(w.k, w.k_bias).forward(x, n, t.k.data(), &t.lin_k);
    ctx.linear(w.v, w.v_bias).forward(x, n, t.v.data(), &t.lin_v);
    qk_norm_forward(c, t.q, n, nq, w.q_norm, t.q_raw, t.q_inv);
    qk_norm_forward(c, t.k, n, nkv, w.k_norm, t.k_raw, t.k_inv);
    if (c.clip_qkv > 0.0) {
        const auto clip = static_cast<float>(c.clip_qkv);
        clip_forward(clip, t.q, t.q_pre_clip);
        clip_forward(clip, t.k, t.k_pre_clip);
        clip_forward(clip, t.v, t.v_pre_clip);
    }
    rope_rows(ctx, t.q.data(), nq, hd, 0, false);
    rope_rows(ctx, t.k.data(), nkv, hd, 0, false);
    attend_all(ctx, shape(ctx, nq, nkv, hd, hd), t);
    ctx.linear(w.o, w.o_bias).forward(t.o.data(), n, out, &t.lin_o);
}

void standard_backward(const LayerContext& ctx, const float* x, const float* dout, AttentionTape& t,
                       float* dx) {
    const hf::ModelConfig& c = ctx.config;
    const hf::AttentionWeights& w = ctx.weights.attention;
    const int64_t n = ctx.tokens(), hd = c.head_dim, nq = c.num_heads, nkv = c.num_kv_heads;
    std::vector<float> d_o = zeros(n * nq * hd);
    ctx.linear(w.o, w.o_bias).backward(t.o.data(), dout, n, t.lin_o, d_o.data());
    std::vector<float> dq = zeros(n * nq * hd), dk = zeros(n * nkv * hd), dv = zeros(dk.size());
    attend_all_backward(ctx, shape(ctx, nq, nkv, hd, hd), t, d_o.data(), dq.data(), dk.data(),
                        dv.data());
    rope_rows(ctx, dq.data(), nq, hd, 0, true);
    rope_rows(ctx, dk.data(), nkv, hd, 0, true);
    if (c.clip_qkv > 0.0) {
        const auto clip = static_cast<float>(c.clip_qkv);
        clip_backward(clip, t.q_pre_clip, dq);
        clip_backward(clip, t.k_pre_clip, dk);
        clip_backward(clip, t.v_pre_clip, dv);
    }
    dq = qk_norm_backward(c, std::move(dq), n, nq, w.q_norm, t.q_raw, t.q_inv);
    dk = qk_norm_backward(c, std::move(dk), n, nkv, w.k_norm, t.k_raw, t.k_inv);
    ctx.linear(w.q, w.q_bias).backward(x, dq.data(), n, t.lin_q, dx);
    ctx.linear(w.k, w.k_bias).backward(x, dk.data(), n, t.lin_k, dx);
    ctx.linear(w.v, w.v_bias).backward(x, dv.data(), n, t.lin_v, dx);
}

struct LatentDims {
    int64_t heads, nope, rd, qd, vd, rank, kvb, latent;
};

LatentDims latent_dims(const hf::ModelConfig& c) {
    LatentDims d{};
    d.heads = c.num_heads;
    d.nope = c.qk_nope_head_dim;
    d.rd = c.qk_rope_head_dim;
    d.qd = d.nope + d.rd;
    d.vd = c.v_head_dim;
    d.rank = c.kv_lora_rank;
    d.kvb = d.nope + d.vd;
    d.latent = d.rank + d.rd;
    return d;
}

// Multi-head latent attention as modeling_deepseek_v2/v3 compute it in training: the keys
// and values of every position expanded through kv_b_proj.
void latent_forward(const LayerContext& ctx, const float* x, float* out, AttentionTape& t) {
    const hf::ModelConfig& c = ctx.config;
    const hf::AttentionWeights& w = ctx.weights.attention;
    const LatentDims d = latent_dims(c);
    const int64_t n = ctx.tokens(), ql = c.q_lora_rank;
    t.q.resize(static_cast<size_t>(n * d.heads * d.qd));
    if (ql > 0) {
        t.q_a_raw.resize(static_cast<size_t>(n * ql));
        ctx.linear(w.q_a, w.q_a_bias).forward(x, n, t.q_a_raw.data(), &t.lin_q_a);
        t.q_a_normed.resize(t.q_a_raw.size());
        t.q_a_inv.resize(static_cast<size_t>(n));
        rms_norm_forward(t.q_a_raw.data(), n, ql, ql, w.q_a_norm, kLatentNormEps,
                         t.q_a_normed.data(), ql, t.q_a_inv.data());
        ctx.linear(w.q_b, kNoBias).forward(t.q_a_normed.data(), n, t.q.data(), &t.lin_q);
    } else {
        ctx.linear(w.q, kNoBias).forward(x, n, t.q.data(), &t.lin_q);
    }
    // kv_a: [compressed kv (rank) | shared rope key (rd)] per token.
    t.kv_a_raw.resize(static_cast<size_t>(n * d.latent));
    ctx.linear(w.kv_a, w.kv_a_bias).forward(x, n, t.kv_a_raw.data(), &t.lin_kv_a);
    t.c.resize(static_cast<size_t>(n * d.rank));
    t.c_inv.resize(static_cast<size_t>(n));
    rms_norm_forward(t.kv_a_raw.data(), n, d.rank, d.latent, w.kv_a_norm, kLatentNormEps,
                     t.c.data(), d.rank, t.c_inv.data());
    t.kv.resize(static_cast<size_t>(n * d.heads * d.kvb));
    ctx.linear(w.kv_b, kNoBias).forward(t.c.data(), n, t.kv.data(), &t.lin_kv_b);
    rope_rows(ctx, t.q.data(), d.heads, d.qd, d.nope, false);
    t.k.resize(static_cast<size_t>(n * d.heads * d.qd));
    t.v.resize(static_cast<size_t>(n * d.heads * d.vd));
    std::vector<float> k_pe(static_cast<size_t>(d.rd));
    for (int64_t i = 0; i < n; ++i) {
        std::copy_n(t.kv_a_raw.data() + i * d.latent + d.rank, d.rd, k_pe.data());
        ctx.rope.apply(k_pe.data(), i % ctx.seq_len);
        for (int64_t h = 0; h < d.heads; ++h) {
            const float* src = t.kv.data() + (i * d.heads + h) * d.kvb;
            float* k = t.k.data() + (i * d.heads + h) * d.qd;
            std::copy_n(src, d.nope, k);
            std::copy_n(k_pe.data(), d.rd, k + d.nope);
            std::copy_n(src + d.nope, d.vd, t.v.data() + (i * d.heads + h) * d.vd);
        }
    }
    attend_all(ctx, shape(ctx, d.heads, d.heads, d.qd, d.vd), t);
    ctx.linear(w.o, w.o_bias).forward(t.o.data(), n, out, &t.lin_o);
}

void latent_backward(const LayerContext& ctx, const float* x, const float* dout, AttentionTape& t,
                     float* dx) {
    const hf::ModelConfig& c = ctx.config;
    const hf::AttentionWeights& w = ctx.weights.attention;
    const LatentDims d = latent_dims(c);
    const int64_t n = ctx.tokens(), ql = c.q_lora_rank;
    std::vector<float> d_o = zeros(n * d.heads * d.vd);
    ctx.linear(w.o, w.o_bias).backward(t.o.data(), dout, n, t.lin_o, d_o.data());
    std::vector<float> dq = zeros(n * d.heads * d.qd), dk = zeros(dq.size()),
                       dv = zeros(n * d.heads * d.vd);
    attend_all_backward(ctx, shape(ctx, d.heads, d.heads, d.qd, d.vd), t, d_o.data(), dq.data(),
                        dk.data(), dv.data());
    // Query path.
    rope_rows(ctx, dq.data(), d.heads, d.qd, d.nope, true);
    if (ql > 0) {
        std::vector<float> d_normed = zeros(n * ql), d_raw = zeros(n * ql);
        ctx.linear(w.q_b, kNoBias)
            .backward(t.q_a_normed.data(), dq.data(), n, t.lin_q, d_normed.data());
        rms_norm_backward(t.q_a_raw.data(), t.q_a_inv.data(), d_normed.data(), n, ql, ql, ql,
                          w.q_a_norm, d_raw.data(), ql);
        ctx.linear(w.q_a, w.q_a_bias).backward(x, d_raw.data(), n, t.lin_q_a, dx);
    } else {
        ctx.linear(w.q, kNoBias).backward(x, dq.data(), n, t.lin_q, dx);
    }
    // Key/value path: the expanded rows' gradient, the shared rope key's summed over heads.
    std::vector<float> dkv = zeros(n * d.heads * d.kvb), dkv_a = zeros(n * d.latent);
    for (int64_t i = 0; i < n; ++i) {
        float* d_pe = dkv_a.data() + i * d.latent + d.rank;
        for (int64_t h = 0; h < d.heads; ++h) {
            float* dst = dkv.data() + (i * d.heads + h) * d.kvb;
            const float* k = dk.data() + (i * d.heads + h) * d.qd;
            std::copy_n(k, d.nope, dst);
            std::copy_n(dv.data() + (i * d.heads + h) * d.vd, d.vd, dst + d.nope);
            for (int64_t r = 0; r < d.rd; ++r) d_pe[r] += k[d.nope + r];
        }
        ctx.rope.apply_transposed(d_pe, i % ctx.seq_len);
    }
    std::vector<float> dc = zeros(n * d.rank);
    ctx.linear(w.kv_b, kNoBias).backward(t.c.data(), dkv.data(), n, t.lin_kv_b, dc.data());
    rms_norm_backward(t.kv_a_raw.data(), t.c_inv.data(), dc.data(), n, d.rank, d.latent, d.rank,
                      w.kv_a_norm, dkv_a.data(), d.latent);
    ctx.linear(w.kv_a, w.kv_a_bias).backward(x, dkv_a.data(), n, t.lin_kv_a, dx);
}

}  // namespace

void attention_forward(const LayerContext& ctx, const float* x, float* out, AttentionTape* tape) {
    AttentionTape local;
    AttentionTape& t = tape != nullptr ? *tape : local;
    if (ctx.config.attention == hf::AttentionKind::Latent) {
        latent_forward(ctx, x, out, t);
    } else {
        standard_forward(ctx, x, out, t);
    }
}

void attention_backward(const LayerContext& ctx, const float* x, const float* dout,
                        AttentionTape& tape, float* dx) {
    if (ctx.config.attention == hf::AttentionKind::Latent) {
        latent_backward(ctx, x, dout, tape, dx);
    } else {
        standard_backward(ctx, x, dout, tape, dx);
    }
}

}  // namespace greenmoe::lora

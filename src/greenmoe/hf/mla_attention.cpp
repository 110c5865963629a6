// Multi-head latent attention (see mla_attention.h), as modeling_deepseek_v2/v3 compute it,
// with the cache holding the latent rows only.
#include "greenmoe/hf/mla_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "greenmoe/hf/attention.h"
#include "greenmoe/hf/ops.h"

namespace greenmoe::hf {

namespace {

// q_a_layernorm and kv_a_layernorm keep RMSNorm's default epsilon, not rms_norm_eps.
constexpr double kLatentNormEps = 1e-6;

struct Dims {
    int64_t heads, nope, rd, qd, vd, rank, kvb, latent;
};

// The keys and values of every cached position expanded through kv_b_proj, then ordinary
// attention: what the model's code does, and the cheaper way when many queries come at once.
void expand_and_attend(const Dims& d, const AttentionWeights& w, const LayerCache& cache,
                       const float* q, int64_t count, double scale, float* out) {
    const int64_t total = cache.length();
    std::vector<float> compressed(static_cast<size_t>(total * d.rank));
    for (int64_t t = 0; t < total; ++t) {
        std::copy_n(cache.latent.data() + t * d.latent, d.rank, compressed.data() + t * d.rank);
    }
    std::vector<float> kv(static_cast<size_t>(total * d.heads * d.kvb));
    linear(compressed.data(), total, w.kv_b, kv.data());
    LayerCache full;
    full.heads = d.heads;
    full.k_dim = d.qd;
    full.v_dim = d.vd;
    full.k.resize(static_cast<size_t>(total * d.heads * d.qd));
    full.v.resize(static_cast<size_t>(total * d.heads * d.vd));
    for (int64_t t = 0; t < total; ++t) {
        const float* k_pe = cache.latent.data() + t * d.latent + d.rank;
        for (int64_t h = 0; h < d.heads; ++h) {
            const float* src = kv.data() + (t * d.heads + h) * d.kvb;
            float* k = full.k.data() + (t * d.heads + h) * d.qd;
            std::copy_n(src, d.nope, k);
            std::copy_n(k_pe, d.rd, k + d.nope);
            std::copy_n(src + d.nope, d.vd, full.v.data() + (t * d.heads + h) * d.vd);
        }
    }
    attend(q, count, d.heads, full, scale, 0, out);
}

// The same attention on the latent rows without expanding them: a head's no-rope key is
// W_UK·c and its value W_UV·c, so q·k = (W_UKᵀq)·c and Σ p·v = W_UV·(Σ p·c). kv_b holds
// [heads, nope + vd, rank] as float rows.
void absorbed_attend(const Dims& d, const std::vector<float>& kv_b, const LayerCache& cache,
                     const float* q, int64_t count, double scale, float* out) {
    const int64_t total = cache.length(), start = total - count;
#pragma omp parallel for collapse(2) schedule(static) if (count * d.heads * total >= 256)
    for (int64_t i = 0; i < count; ++i) {
        for (int64_t h = 0; h < d.heads; ++h) {
            const int64_t pos = start + i;
            const float* q_nope = q + (i * d.heads + h) * d.qd;
            const float* q_pe = q_nope + d.nope;
            const float* w_uk = kv_b.data() + h * d.kvb * d.rank;
            const float* w_uv = w_uk + d.nope * d.rank;
            std::vector<double> q_latent(static_cast<size_t>(d.rank), 0.0);
            for (int64_t e = 0; e < d.nope; ++e) {
                const double qe = q_nope[e];
                const float* row = w_uk + e * d.rank;
                for (int64_t c = 0; c < d.rank; ++c) q_latent[size_t(c)] += qe * row[c];
            }
            std::vector<double> p(static_cast<size_t>(pos + 1));
            double top = -INFINITY;
            for (int64_t j = 0; j <= pos; ++j) {
                const float* row = cache.latent.data() + j * d.latent;
                double dot = 0.0;
                for (int64_t c = 0; c < d.rank; ++c) dot += q_latent[size_t(c)] * row[c];
                for (int64_t r = 0; r < d.rd; ++r) dot += double(q_pe[r]) * row[d.rank + r];
                p[size_t(j)] = dot * scale;
                top = std::max(top, dot * scale);
            }
            double sum = 0.0;
            for (double& v : p) {
                v = std::exp(v - top);
                sum += v;
            }
            std::vector<double> context(static_cast<size_t>(d.rank), 0.0);
            for (int64_t j = 0; j <= pos; ++j) {
                const double pj = p[size_t(j)] / sum;
                const float* row = cache.latent.data() + j * d.latent;
                for (int64_t c = 0; c < d.rank; ++c) context[size_t(c)] += pj * row[c];
            }
            float* o = out + (i * d.heads + h) * d.vd;
            for (int64_t e = 0; e < d.vd; ++e) {
                const float* row = w_uv + e * d.rank;
                double acc = 0.0;
                for (int64_t c = 0; c < d.rank; ++c) acc += double(row[c]) * context[size_t(c)];
                o[e] = static_cast<float>(acc);
            }
        }
    }
}

}  // namespace

void latent_attention(const ModelConfig& c, const AttentionWeights& w, const Rope& rope,
                      const float* x, int64_t rows, const std::vector<Segment>& segments,
                      float* out) {
    const int64_t n = rows;
    Dims d{};
    d.heads = c.num_heads;
    d.nope = c.qk_nope_head_dim;
    d.rd = c.qk_rope_head_dim;
    d.qd = d.nope + d.rd;
    d.vd = c.v_head_dim;
    d.rank = c.kv_lora_rank;
    d.kvb = d.nope + d.vd;
    d.latent = d.rank + d.rd;

    std::vector<float> q(static_cast<size_t>(n * d.heads * d.qd));
    if (c.q_lora_rank > 0) {
        std::vector<float> qa(static_cast<size_t>(n * c.q_lora_rank));
        linear(x, n, w.q_a, w.q_a_bias, qa.data());
        rms_norm(qa.data(), n, c.q_lora_rank, c.q_lora_rank, w.q_a_norm, kLatentNormEps);
        linear(qa.data(), n, w.q_b, q.data());
    } else {
        linear(x, n, w.q, q.data());
    }
    // kv_a: [compressed kv (rank) | shared rope key (rd)] per token: the latent row.
    std::vector<float> kv_a(static_cast<size_t>(n * d.latent));
    linear(x, n, w.kv_a, w.kv_a_bias, kv_a.data());
    rms_norm(kv_a.data(), n, d.rank, d.latent, w.kv_a_norm, kLatentNormEps);

    std::vector<float> o(static_cast<size_t>(n * d.heads * d.vd));
    std::vector<float> kv_b;  // kv_b_proj as float, read once when a segment absorbs
    for (const Segment& s : segments) {
        LayerCache& cache = *s.cache;
        const int64_t start = cache.length();
        cache.heads = d.heads;
        cache.k_dim = d.qd;
        cache.v_dim = d.vd;
        cache.latent_dim = d.latent;
        for (int64_t r = 0; r < s.count; ++r) {
            const int64_t i = s.begin + r, pos = start + r;
            for (int64_t h = 0; h < d.heads; ++h) {
                rope.apply(q.data() + (i * d.heads + h) * d.qd + d.nope, pos);
            }
            const size_t at = cache.latent.size();
            cache.latent.insert(cache.latent.end(), kv_a.data() + i * d.latent,
                                kv_a.data() + (i + 1) * d.latent);
            rope.apply(cache.latent.data() + at + static_cast<size_t>(d.rank), pos);
        }
        const float* q_seg = q.data() + s.begin * d.heads * d.qd;
        float* o_seg = o.data() + s.begin * d.heads * d.vd;
        // Multiply-adds of each way: expanding every cached position through kv_b_proj, or
        // per query and head the two rank-sized products and the latent dot products.
        const double total = double(start + s.count);
        const double expand = total * d.rank * d.heads * d.kvb;
        const double absorb =
            double(s.count) * d.heads * ((d.nope + d.vd) * d.rank + total * (2 * d.rank + d.rd));
        if (expand <= absorb) {
            expand_and_attend(d, w, cache, q_seg, s.count, c.attention_scale, o_seg);
            continue;
        }
        if (kv_b.empty()) {
            kv_b.resize(static_cast<size_t>(d.heads * d.kvb * d.rank));
            for (int64_t r = 0; r < d.heads * d.kvb; ++r)
                w.kv_b.read_row(r, kv_b.data() + r * d.rank);
        }
        absorbed_attend(d, kv_b, cache, q_seg, s.count, c.attention_scale, o_seg);
    }
    linear(o.data(), n, w.o, w.o_bias, out);
}

}  // namespace greenmoe::hf

// Multi-head latent attention (see mla_attention.h), as modeling_deepseek_v2/v3 compute it.
#include "greenmoe/hf/mla_attention.h"

#include <algorithm>
#include <vector>

#include "greenmoe/hf/attention.h"
#include "greenmoe/hf/ops.h"

namespace greenmoe::hf {

// q_a_layernorm and kv_a_layernorm keep RMSNorm's default epsilon, not rms_norm_eps.
constexpr double kLatentNormEps = 1e-6;

void latent_attention(const ModelConfig& c, const AttentionWeights& w, const Rope& rope,
                      const float* x, int64_t rows, const std::vector<Segment>& segments,
                      float* out) {
    const int64_t n = rows;
    const int64_t heads = c.num_heads, nope = c.qk_nope_head_dim, rd = c.qk_rope_head_dim;
    const int64_t qd = nope + rd, vd = c.v_head_dim, rank = c.kv_lora_rank;

    std::vector<float> q(static_cast<size_t>(n * heads * qd));
    if (c.q_lora_rank > 0) {
        std::vector<float> qa(static_cast<size_t>(n * c.q_lora_rank));
        linear(x, n, w.q_a, w.q_a_bias, qa.data());
        rms_norm(qa.data(), n, c.q_lora_rank, c.q_lora_rank, w.q_a_norm, kLatentNormEps);
        linear(qa.data(), n, w.q_b, q.data());
    } else {
        linear(x, n, w.q, q.data());
    }
    // kv_a: [compressed kv (rank) | shared rope key (rd)] per token.
    const int64_t kva = rank + rd;
    std::vector<float> kv_a(static_cast<size_t>(n * kva));
    linear(x, n, w.kv_a, w.kv_a_bias, kv_a.data());
    rms_norm(kv_a.data(), n, rank, kva, w.kv_a_norm, kLatentNormEps);
    std::vector<float> compressed(static_cast<size_t>(n * rank));
    for (int64_t i = 0; i < n; ++i) {
        std::copy_n(kv_a.data() + i * kva, rank, compressed.data() + i * rank);
    }
    const int64_t kvb = nope + vd;
    std::vector<float> kv(static_cast<size_t>(n * heads * kvb));
    linear(compressed.data(), n, w.kv_b, kv.data());

    std::vector<float> o(static_cast<size_t>(n * heads * vd));
    std::vector<float> k_pe(static_cast<size_t>(rd));
    for (const Segment& s : segments) {
        LayerCache& cache = *s.cache;
        const int64_t start = cache.length();
        cache.heads = heads;
        cache.k_dim = qd;
        cache.v_dim = vd;
        const size_t k0 = cache.k.size(), v0 = cache.v.size();
        cache.k.resize(k0 + static_cast<size_t>(s.count * heads * qd));
        cache.v.resize(v0 + static_cast<size_t>(s.count * heads * vd));
        for (int64_t r = 0; r < s.count; ++r) {
            const int64_t i = s.begin + r, pos = start + r;
            for (int64_t h = 0; h < heads; ++h) {
                rope.apply(q.data() + (i * heads + h) * qd + nope, pos);
            }
            std::copy_n(kv_a.data() + i * kva + rank, rd, k_pe.data());
            rope.apply(k_pe.data(), pos);
            for (int64_t h = 0; h < heads; ++h) {
                const float* src = kv.data() + (i * heads + h) * kvb;
                float* k = cache.k.data() + k0 + static_cast<size_t>((r * heads + h) * qd);
                std::copy_n(src, nope, k);
                std::copy_n(k_pe.data(), rd, k + nope);
                std::copy_n(src + nope, vd,
                            cache.v.data() + v0 + static_cast<size_t>((r * heads + h) * vd));
            }
        }
        attend(q.data() + s.begin * heads * qd, s.count, heads, cache, c.attention_scale, 0,
               o.data() + s.begin * heads * vd);
    }
    linear(o.data(), n, w.o, w.o_bias, out);
}

}  // namespace greenmoe::hf

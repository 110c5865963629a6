// Causal self-attention (see attention.h).
#include "greenmoe/hf/attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "greenmoe/hf/ops.h"

namespace greenmoe::hf {

namespace {

// From this many query rows on, attention goes through matrix products per head.
constexpr int64_t kBlockedMinRows = 16;
// Query rows per block of scores: [rows, positions] floats per head at a time.
constexpr int64_t kQueryBlock = 256;

// Prefill attention as products: per KV head's query heads and per block of query rows,
// S = scale · Q Kᵀ (sgemm over the cache's strided head columns), the causal (and sliding
// window) softmax of each row in place, then O = P V. Scores in fp32 with the row maximum
// subtracted; each row's sum in double.
void attend_blocked(const float* q, int64_t n, int64_t q_heads, const LayerCache& cache,
                    double scale, int window, float* out) {
    const int64_t total = cache.length(), start = total - n;
    const int64_t kd = cache.k_dim, vd = cache.v_dim, kv_heads = cache.heads;
    const int64_t group = q_heads / kv_heads;
    std::vector<float> scores(static_cast<size_t>(std::min(n, kQueryBlock) * total));
    for (int64_t h = 0; h < q_heads; ++h) {
        const int64_t kvh = h / group;
        for (int64_t i0 = 0; i0 < n; i0 += kQueryBlock) {
            const int64_t rows = std::min(kQueryBlock, n - i0);
            // Keys past the block's last query position are never attended: leave them out.
            const int64_t cols = start + i0 + rows;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                        static_cast<int>(cols), static_cast<int>(kd), static_cast<float>(scale),
                        q + (i0 * q_heads + h) * kd, static_cast<int>(q_heads * kd),
                        cache.k.data() + kvh * kd, static_cast<int>(kv_heads * kd), 0.0f,
                        scores.data(), static_cast<int>(cols));
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 14))
            for (int64_t r = 0; r < rows; ++r) {
                causal_softmax_row(scores.data() + r * cols, start + i0 + r, window, cols);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
                        static_cast<int>(vd), static_cast<int>(cols), 1.0f, scores.data(),
                        static_cast<int>(cols), cache.v.data() + kvh * vd,
                        static_cast<int>(kv_heads * vd), 0.0f, out + (i0 * q_heads + h) * vd,
                        static_cast<int>(q_heads * vd));
        }
    }
}

}  // namespace

void causal_softmax_row(float* row, int64_t pos, int window, int64_t cols) {
    const int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
    float top = -INFINITY;
    for (int64_t j = first; j <= pos; ++j) top = std::max(top, row[j]);
    double sum = 0.0;
    for (int64_t j = first; j <= pos; ++j) {
        row[j] = std::exp(row[j] - top);
        sum += row[j];
    }
    const auto inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < first; ++j) row[j] = 0.0f;
    for (int64_t j = first; j <= pos; ++j) row[j] *= inv;
    for (int64_t j = pos + 1; j < cols; ++j) row[j] = 0.0f;
}

void attend(const float* q, int64_t n, int64_t q_heads, const LayerCache& cache, double scale,
            int window, float* out) {
    if (n >= kBlockedMinRows) return attend_blocked(q, n, q_heads, cache, scale, window, out);
    const int64_t total = cache.length(), start = total - n;
    const int64_t kd = cache.k_dim, vd = cache.v_dim, kv_heads = cache.heads;
    const int64_t group = q_heads / kv_heads;
#pragma omp parallel for collapse(2) schedule(static) if (n * q_heads * total * kd >= (1 << 16))
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t h = 0; h < q_heads; ++h) {
            const int64_t pos = start + i;
            const int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
            const int64_t kvh = h / group;
            const float* qi = q + (i * q_heads + h) * kd;
            std::vector<double> p(static_cast<size_t>(pos - first + 1));
            double top = -INFINITY;
            for (int64_t j = first; j <= pos; ++j) {
                const float* kj = cache.k.data() + (j * kv_heads + kvh) * kd;
                double dot = 0.0;
                for (int64_t d = 0; d < kd; ++d) dot += double(qi[d]) * kj[d];
                p[static_cast<size_t>(j - first)] = dot * scale;
                top = std::max(top, dot * scale);
            }
            double sum = 0.0;
            for (double& v : p) {
                v = std::exp(v - top);
                sum += v;
            }
            float* o = out + (i * q_heads + h) * vd;
            std::vector<double> acc(static_cast<size_t>(vd), 0.0);
            for (int64_t j = first; j <= pos; ++j) {
                const double pj = p[static_cast<size_t>(j - first)] / sum;
                const float* vj = cache.v.data() + (j * kv_heads + kvh) * vd;
                for (int64_t d = 0; d < vd; ++d) acc[static_cast<size_t>(d)] += pj * vj[d];
            }
            for (int64_t d = 0; d < vd; ++d) o[d] = static_cast<float>(acc[static_cast<size_t>(d)]);
        }
    }
}

void standard_attention(const ModelConfig& c, const AttentionWeights& w, const Rope& rope,
                        int window, const float* x, int64_t rows,
                        const std::vector<Segment>& segments, float* out) {
    const int64_t hd = c.head_dim, nq = c.num_heads, nkv = c.num_kv_heads;
    const int64_t n = rows;
    std::vector<float> q(static_cast<size_t>(n * nq * hd)), k(static_cast<size_t>(n * nkv * hd)),
        v(k.size());
    linear(x, n, w.q, w.q_bias, q.data());
    linear(x, n, w.k, w.k_bias, k.data());
    linear(x, n, w.v, w.v_bias, v.data());
    if (c.qk_norm == QkNorm::Whole) {
        rms_norm(q.data(), n, nq * hd, nq * hd, w.q_norm, c.rms_norm_eps);
        rms_norm(k.data(), n, nkv * hd, nkv * hd, w.k_norm, c.rms_norm_eps);
    } else if (c.qk_norm == QkNorm::PerHead) {
        rms_norm(q.data(), n * nq, hd, hd, w.q_norm, c.rms_norm_eps);
        rms_norm(k.data(), n * nkv, hd, hd, w.k_norm, c.rms_norm_eps);
    }
    if (c.clip_qkv > 0.0) {
        const auto clip = static_cast<float>(c.clip_qkv);
        for (auto* t : {&q, &k, &v}) {
            for (float& f : *t) f = std::clamp(f, -clip, clip);
        }
    }
    std::vector<float> o(static_cast<size_t>(n * nq * hd));
    for (const Segment& s : segments) {
        LayerCache& cache = *s.cache;
        const int64_t start = cache.length();
        for (int64_t i = s.begin; i < s.begin + s.count; ++i) {
            const int64_t pos = start + (i - s.begin);
            for (int64_t h = 0; h < nq; ++h) rope.apply(q.data() + (i * nq + h) * hd, pos);
            for (int64_t h = 0; h < nkv; ++h) rope.apply(k.data() + (i * nkv + h) * hd, pos);
        }
        cache.heads = nkv;
        cache.k_dim = cache.v_dim = hd;
        const auto row = static_cast<size_t>(nkv * hd);
        const auto first = static_cast<size_t>(s.begin) * row;
        const auto last = static_cast<size_t>(s.begin + s.count) * row;
        cache.k.insert(cache.k.end(), k.begin() + static_cast<ptrdiff_t>(first),
                       k.begin() + static_cast<ptrdiff_t>(last));
        cache.v.insert(cache.v.end(), v.begin() + static_cast<ptrdiff_t>(first),
                       v.begin() + static_cast<ptrdiff_t>(last));
        attend(q.data() + s.begin * nq * hd, s.count, nq, cache, c.attention_scale, window,
               o.data() + s.begin * nq * hd);
    }
    linear(o.data(), n, w.o, w.o_bias, out);
}

}  // namespace greenmoe::hf

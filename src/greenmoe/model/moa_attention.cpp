// MoaAttention: shared keys/values, grouped per-expert query and output products, causal
// attention per (token, expert) row, and their backward (see moa_attention.h, docs/moe.md).
//
// Work is split by (sequence, head) unit: a unit reads one head's keys and values of one
// sequence and owns that slice of their gradients, so the backward accumulates dK/dV
// without atomics, in a fixed order (tokens, then choices), whatever the thread count.
#include "greenmoe/model/moa_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "greenmoe/core/error.h"
#include "greenmoe/nn/matmul.h"
#include "greenmoe/nn/parallel.h"
#include "greenmoe/nn/vec_math.h"

namespace greenmoe {

namespace {

using nn::load8;
using nn::store8;
using nn::Vec8;

// Tokens whose rows share one pass over a unit's keys or values: the forward's weighted sums
// of values, the backward's dq, dK and dV.
constexpr int kTokenBlock = 4;

// s[i] = Σ_d a[d] · b[i·ld + d] for the four rows i < 4 of b.
inline void dot4(float* s, const float* a, const float* b, ptrdiff_t ld, int hs) {
    if (hs % 8 == 0) {
        Vec8 s0{}, s1{}, s2{}, s3{};
        for (int d = 0; d < hs; d += 8) {
            const Vec8 av = load8(a + d);
            s0 += av * load8(b + d);
            s1 += av * load8(b + ld + d);
            s2 += av * load8(b + 2 * ld + d);
            s3 += av * load8(b + 3 * ld + d);
        }
        s[0] = nn::hsum8(s0);
        s[1] = nn::hsum8(s1);
        s[2] = nn::hsum8(s2);
        s[3] = nn::hsum8(s3);
        return;
    }
    for (int i = 0; i < 4; ++i) {
        float acc = 0.0f;
        for (int d = 0; d < hs; ++d) acc += a[d] * b[i * ld + d];
        s[i] = acc;
    }
}

inline float dot1(const float* a, const float* b, int hs) {
    if (hs % 8 == 0) {
        Vec8 acc{};
        for (int d = 0; d < hs; d += 8) acc += load8(a + d) * load8(b + d);
        return nn::hsum8(acc);
    }
    float acc = 0.0f;
    for (int d = 0; d < hs; ++d) acc += a[d] * b[d];
    return acc;
}

// y[i][d] += Σ_{s<len} w[i][s] · b[s·ld + d] for M output rows at once, so each row of b is
// loaded once per M rows. Terms are added in order of s.
template <int M>
void gather_outer(float* const* y, int len, const float* const* w, const float* b, ptrdiff_t ld,
                  int hs) {
    if (hs % 8 == 0) {
        for (int d = 0; d < hs; d += 8) {
            Vec8 acc[M];
            for (int i = 0; i < M; ++i) acc[i] = load8(y[i] + d);
            const float* row = b + d;
            for (int s = 0; s < len; ++s, row += ld) {
                const Vec8 bv = load8(row);
                for (int i = 0; i < M; ++i) acc[i] += w[i][s] * bv;
            }
            for (int i = 0; i < M; ++i) store8(y[i] + d, acc[i]);
        }
        return;
    }
    for (int i = 0; i < M; ++i) {
        for (int s = 0; s < len; ++s) {
            const float ws = w[i][s];
            const float* row = b + s * ld;
            for (int d = 0; d < hs; ++d) y[i][d] += ws * row[d];
        }
    }
}

// The same for any number of rows m, up to four at a time.
void gather_outer(float* const* y, int len, int m, const float* const* w, const float* b,
                  ptrdiff_t ld, int hs) {
    int i = 0;
    for (; i + 4 <= m; i += 4) gather_outer<4>(y + i, len, w + i, b, ld, hs);
    if (i + 2 <= m) {
        gather_outer<2>(y + i, len, w + i, b, ld, hs);
        i += 2;
    }
    if (i < m) gather_outer<1>(y + i, len, w + i, b, ld, hs);
}

// b[s·ld + d] += Σ_{i<M} w[i][s] · a[i][d] for the rows s < len of b: an outer-product update
// from M query rows at once, so each row of b is read and written once per M rows. Terms are
// added in order of i.
template <int M>
void scatter_outer(float* b, ptrdiff_t ld, int len, const float* const* w, const float* const* a,
                   int hs) {
    if (hs % 8 == 0) {
        for (int d = 0; d < hs; d += 8) {
            Vec8 av[M];
            for (int i = 0; i < M; ++i) av[i] = load8(a[i] + d);
            float* row = b + d;
            for (int s = 0; s < len; ++s, row += ld) {
                Vec8 acc = load8(row);
                for (int i = 0; i < M; ++i) acc += w[i][s] * av[i];
                store8(row, acc);
            }
        }
        return;
    }
    for (int s = 0; s < len; ++s) {
        float* row = b + s * ld;
        for (int i = 0; i < M; ++i) {
            const float ws = w[i][s];
            for (int d = 0; d < hs; ++d) row[d] += ws * a[i][d];
        }
    }
}

// The same for any number of rows m, up to four at a time.
void scatter_outer(float* b, ptrdiff_t ld, int len, int m, const float* const* w,
                   const float* const* a, int hs) {
    int i = 0;
    for (; i + 4 <= m; i += 4) scatter_outer<4>(b, ld, len, w + i, a + i, hs);
    if (i + 2 <= m) {
        scatter_outer<2>(b, ld, len, w + i, a + i, hs);
        i += 2;
    }
    if (i < m) scatter_outer<1>(b, ld, len, w + i, a + i, hs);
}

// p[0..len) = softmax(scale · p[0..len)) in place.
void softmax_in_place(float* p, int len, float scale) {
    const int body = len / 8 * 8;
    const int tail = len - body;
    float mx = p[0];
    for (int j = 1; j < len; ++j) mx = std::max(mx, p[j]);
    const Vec8 vmx = nn::splat8(mx);
    Vec8 vsum{};
    for (int j = 0; j < body; j += 8) {
        const Vec8 e = nn::exp8((load8(p + j) - vmx) * scale);
        store8(p + j, e);
        vsum += e;
    }
    if (tail > 0) {
        Vec8 e = nn::exp8((nn::load_partial8(p + body, tail, mx) - vmx) * scale);
        for (int i = tail; i < 8; ++i) e[i] = 0.0f;
        nn::store_partial8(p + body, e, tail);
        vsum += e;
    }
    const float inv = 1.0f / nn::hsum8(vsum);
#pragma omp simd
    for (int j = 0; j < len; ++j) p[j] *= inv;
}

}  // namespace

MoaAttention::MoaAttention(const GptConfig& config, int max_batch, int max_seq)
    : C_(config.n_embd),
      NH_(config.n_head),
      hs_(config.n_head >= 1 ? config.n_embd / config.n_head : 0),
      E_(config.n_experts),
      K_(config.top_k),
      max_batch_(max_batch),
      max_seq_(max_seq),
      scale_(hs_ > 0 ? 1.0f / std::sqrt(static_cast<float>(hs_)) : 0.0f),
      router_(MoeKind::Olnn, config.n_embd, config.n_experts, config.top_k,
              std::max(1, max_batch) * std::max(1, max_seq), false) {
    check(NH_ >= 1 && C_ >= 1 && C_ % NH_ == 0,
          "MoA attention: model.n_embd ({}) must be a positive multiple of model.n_head ({})", C_,
          NH_);
    check(max_batch >= 1 && max_seq >= 1, "MoA attention: batch {}×{} must be at least 1×1",
          max_batch, max_seq);
    const size_t N = size_t(max_batch) * max_seq, K = K_, C = C_, rows = N * K;
    row_of_.assign(N * K, -1);
    row_token_.assign(rows, 0);
    expert_offset_.assign(E_ + 1, 0);
    fill_.assign(E_, 0);
    att_offset_.assign(rows, 0);
    kv_.reset(N * 2 * C);
    xg_.reset(rows * C);
    q_.reset(rows * C);
    z_.reset(rows * C);
    out_.reset(rows * C);
    // Row t of a sequence holds NH·(t + 1) probabilities.
    att_.reset(K * max_batch * NH_ * (size_t(max_seq) * (max_seq + 1) / 2));
    dgate_.assign(N * K, 0.0f);
    dout_.reset(rows * C);
    dz_.reset(rows * C);
    dq_.reset(rows * C);
    dxg_.reset(rows * C);
    dkv_.reset(N * 2 * C);
    unit_scratch_.reset(size_t(max_batch) * NH_ * 2 * kTokenBlock * K * max_seq);
    unit_ptrs_.assign(size_t(max_batch) * NH_ * 4 * kTokenBlock * K, nullptr);
    unit_out_ptrs_.assign(size_t(max_batch) * NH_ * kTokenBlock * K, nullptr);
}

void MoaAttention::group_rows(int N) {
    const int E = E_, K = K_, T = T_;
    const std::vector<int>& choice = router_.choice();
    // Rows grouped by expert, tokens in order inside each group (no capacity: all rows).
    std::fill(fill_.begin(), fill_.end(), 0);
    for (int i = 0; i < N * K; ++i) fill_[choice[i]] += 1;
    expert_offset_[0] = 0;
    for (int e = 0; e < E; ++e) expert_offset_[e + 1] = expert_offset_[e] + fill_[e];
    std::copy(expert_offset_.begin(), expert_offset_.end() - 1, fill_.begin());
    for (int n = 0; n < N; ++n) {
        for (int j = 0; j < K; ++j) {
            const int r = fill_[choice[n * K + j]]++;
            row_of_[n * K + j] = r;
            row_token_[r] = n;
        }
    }
    size_t offset = 0;
    for (int r = 0; r < N * K; ++r) {
        att_offset_[r] = offset;
        offset += size_t(NH_) * (row_token_[r] % T + 1);
    }
}

void MoaAttention::attend_unit(int b, int h) {
    const int T = T_, K = K_, C = C_, hs = hs_;
    const ptrdiff_t ld = 2 * ptrdiff_t(C);
    const float* keys = kv_.data() + size_t(b) * T * ld + size_t(h) * hs;
    const float* values = keys + C;
    // The rows of kTokenBlock tokens at a time: their probabilities [m][T], zero right of each
    // row's own keys, so that one pass over the values serves them all.
    const int m_max = kTokenBlock * K;
    const size_t unit = size_t(b) * NH_ + h;
    float* a_pad = unit_scratch_.data() + unit * 2 * m_max * T;
    float** z_of = unit_out_ptrs_.data() + unit * m_max;
    const float** a_of = unit_ptrs_.data() + unit * 4 * m_max;
    for (int t0 = 0; t0 < T; t0 += kTokenBlock) {
        const int end = std::min(T, t0 + kTokenBlock);
        int m = 0;
        for (int t = t0; t < end; ++t) {
            const int n = b * T + t, len = t + 1;
            for (int j = 0; j < K; ++j, ++m) {
                const int r = row_of_[n * K + j];
                const float* q = q_.data() + size_t(r) * C + size_t(h) * hs;
                float* a = att_.data() + att_offset_[r] + size_t(h) * len;
                int s = 0;
                for (; s + 4 <= len; s += 4) dot4(a + s, q, keys + s * ld, ld, hs);
                for (; s < len; ++s) a[s] = dot1(q, keys + s * ld, hs);
                softmax_in_place(a, len, scale_);
                float* padded = a_pad + size_t(m) * T;
                std::copy(a, a + len, padded);
                std::fill(padded + len, padded + end, 0.0f);
                a_of[m] = padded;
                z_of[m] = z_.data() + size_t(r) * C + size_t(h) * hs;
                std::fill(z_of[m], z_of[m] + hs, 0.0f);
            }
        }
        gather_outer(z_of, end, m, a_of, values, ld, hs);
    }
}

void MoaAttention::attend_unit_backward(int b, int h) {
    const int T = T_, K = K_, C = C_, hs = hs_;
    const ptrdiff_t ld = 2 * ptrdiff_t(C);
    const float* keys = kv_.data() + size_t(b) * T * ld + size_t(h) * hs;
    const float* values = keys + C;
    float* dkeys = dkv_.data() + size_t(b) * T * ld + size_t(h) * hs;
    float* dvalues = dkeys + C;
    // The rows of kTokenBlock tokens at a time: their probabilities and d(scores), [m][T],
    // zero right of each row's own keys, and pointers to each row's vectors.
    const int m_max = kTokenBlock * K;
    const size_t unit = size_t(b) * NH_ + h;
    float* a_pad = unit_scratch_.data() + unit * 2 * m_max * T;
    float* ds_pad = a_pad + size_t(m_max) * T;
    const float** ptrs = unit_ptrs_.data() + unit * 4 * m_max;
    const float** a_of = ptrs;
    const float** ds_of = ptrs + m_max;
    const float** q_of = ptrs + 2 * m_max;
    const float** dz_of = ptrs + 3 * m_max;
    float** dq_of = unit_out_ptrs_.data() + unit * m_max;
    for (int t0 = 0; t0 < T; t0 += kTokenBlock) {
        const int end = std::min(T, t0 + kTokenBlock);
        int m = 0;
        for (int t = t0; t < end; ++t) {
            const int n = b * T + t, len = t + 1;
            for (int j = 0; j < K; ++j, ++m) {
                const int r = row_of_[n * K + j];
                const float* q = q_.data() + size_t(r) * C + size_t(h) * hs;
                const float* a_row = att_.data() + att_offset_[r] + size_t(h) * len;
                const float* dz = dz_.data() + size_t(r) * C + size_t(h) * hs;
                float* dq = dq_.data() + size_t(r) * C + size_t(h) * hs;
                float* a = a_pad + size_t(m) * T;
                float* ds = ds_pad + size_t(m) * T;
                std::copy(a_row, a_row + len, a);
                std::fill(a + len, a + end, 0.0f);
                // z = Σ a_s v_s: d(a_s) = dz·v_s.
                int s = 0;
                for (; s + 4 <= len; s += 4) dot4(ds + s, dz, values + s * ld, ld, hs);
                for (; s < len; ++s) ds[s] = dot1(dz, values + s * ld, hs);
                // Softmax of scale·scores: d(score_s) = scale · a_s (d(a_s) − Σ a·d(a)).
                float dot = 0.0f;
                for (s = 0; s < len; ++s) dot += a[s] * ds[s];
                for (s = 0; s < len; ++s) ds[s] = scale_ * a[s] * (ds[s] - dot);
                std::fill(ds + len, ds + end, 0.0f);
                std::fill(dq, dq + hs, 0.0f);
                dq_of[m] = dq;
                a_of[m] = a;
                ds_of[m] = ds;
                q_of[m] = q;
                dz_of[m] = dz;
            }
        }
        // score_s = q·k_s: dq = Σ d(score_s) k_s; dv_s += Σ_rows a_s dz and dk_s += Σ_rows
        // d(score_s) q for the keys s < end. Each key row is visited once per block.
        gather_outer(dq_of, end, m, ds_of, keys, ld, hs);
        scatter_outer(dvalues, ld, end, m, a_of, dz_of, hs);
        scatter_outer(dkeys, ld, end, m, ds_of, q_of, hs);
    }
}

void MoaAttention::forward(float* y, const float* x, const MoaTensors& p, int B, int T,
                           bool training, const float* bias, uint64_t rng_key) {
    check(B >= 1 && B <= max_batch_ && T >= 1 && T <= max_seq_,
          "MoA attention: batch {}×{} exceeds the allocated {}×{}", B, T, max_batch_, max_seq_);
    check(!router_.frozen() || (B == B_ && T == T_),
          "MoA attention: frozen routing needs the same {}×{} batch", B_, T_);
    B_ = B;
    T_ = T;
    const int N = B * T, C = C_, K = K_, E = E_;
    router_.forward(x, MoeRouterTensors{p.router_w, p.noise_w, nullptr, nullptr}, N, training, bias,
                    rng_key);
    group_rows(N);
    const int rows = N * K;

    // Shared keys and values of every token; each expert's queries on its gathered tokens.
    nn::matmul_forward(kv_.data(), x, p.kv_w, p.kv_b, N, C, 2 * C);
#pragma omp parallel for schedule(static) if (nn::worth_parallel(size_t(rows) * C))
    for (int r = 0; r < rows; ++r) {
        std::memcpy(xg_.data() + size_t(r) * C, x + size_t(row_token_[r]) * C, sizeof(float) * C);
    }
    for (int e = 0; e < E; ++e) {
        const int r0 = expert_offset_[e], n = expert_offset_[e + 1] - r0;
        if (n == 0) continue;
        nn::matmul_forward(q_.data() + size_t(r0) * C, xg_.data() + size_t(r0) * C,
                           p.q_w + size_t(e) * C * C, p.q_b + size_t(e) * C, n, C, C);
    }

    // Causal attention of every row against its own sequence, one (sequence, head) at a time.
    const int units = B * NH_;
    const size_t flops = size_t(K) * N * (T + 1) * C;
#pragma omp parallel for schedule(static) if (units > 1 && flops >= nn::kParallelMinFlops)
    for (int u = 0; u < units; ++u) attend_unit(u / NH_, u % NH_);

    for (int e = 0; e < E; ++e) {
        const int r0 = expert_offset_[e], n = expert_offset_[e + 1] - r0;
        if (n == 0) continue;
        nn::matmul_forward(out_.data() + size_t(r0) * C, z_.data() + size_t(r0) * C,
                           p.o_w + size_t(e) * C * C, p.o_b + size_t(e) * C, n, C, C);
    }
    // Combine token by token, choices in order: deterministic whatever the threads.
    const float* gate = router_.gate().data();
#pragma omp parallel for schedule(static) if (nn::worth_parallel(size_t(rows) * C))
    for (int n = 0; n < N; ++n) {
        float* yn = y + size_t(n) * C;
        std::fill(yn, yn + C, 0.0f);
        for (int j = 0; j < K; ++j) {
            const float g = gate[n * K + j];
            const float* o = out_.data() + size_t(row_of_[n * K + j]) * C;
            for (int c = 0; c < C; ++c) yn[c] += g * o[c];
        }
    }
}

void MoaAttention::backward(float* dx, const MoaTensors& g, const float* dy, const float* x,
                            const MoaTensors& p, const MoeAuxWeights& w, float aux_scale) {
    check(B_ > 0, "MoA attention: backward() needs a forward() first");
    const int B = B_, T = T_, N = B * T, C = C_, K = K_, E = E_;
    const int rows = N * K;
    const float* gate = router_.gate().data();

    // 1. y = Σ_j w_j out_j: the gate weights' gradients, and d(out) = w_j dy.
    float* dgate = dgate_.data();
#pragma omp parallel for schedule(static) if (nn::worth_parallel(size_t(rows) * C))
    for (int n = 0; n < N; ++n) {
        const float* d = dy + size_t(n) * C;
        for (int j = 0; j < K; ++j) {
            const int r = row_of_[n * K + j];
            const float* o = out_.data() + size_t(r) * C;
            float* dout = dout_.data() + size_t(r) * C;
            const float gw = gate[n * K + j];
            double dot = 0.0;
            for (int c = 0; c < C; ++c) {
                dot += static_cast<double>(o[c]) * d[c];
                dout[c] = gw * d[c];
            }
            dgate[n * K + j] = static_cast<float>(dot);
        }
    }
    router_.backward(dx, MoeRouterTensors{g.router_w, g.noise_w, nullptr, nullptr}, dgate, x,
                     MoeRouterTensors{p.router_w, p.noise_w, nullptr, nullptr}, w, aux_scale);

    // 2. Output maps, per expert on its gathered rows.
    std::memset(dz_.data(), 0, sizeof(float) * rows * C);
    for (int e = 0; e < E; ++e) {
        const int r0 = expert_offset_[e], n = expert_offset_[e + 1] - r0;
        if (n == 0) continue;
        nn::matmul_backward(dz_.data() + size_t(r0) * C, g.o_w + size_t(e) * C * C,
                            g.o_b + size_t(e) * C, dout_.data() + size_t(r0) * C,
                            z_.data() + size_t(r0) * C, p.o_w + size_t(e) * C * C, n, C, C);
    }

    // 3. Attention: dq per row, dK/dV per (sequence, head) unit.
    std::memset(dkv_.data(), 0, sizeof(float) * N * 2 * C);
    const int units = B * NH_;
    const size_t flops = size_t(K) * N * (T + 1) * C * 2;
#pragma omp parallel for schedule(static) if (units > 1 && flops >= nn::kParallelMinFlops)
    for (int u = 0; u < units; ++u) attend_unit_backward(u / NH_, u % NH_);

    // 4. Query maps, then scatter the gathered rows' gradients back token by token, choices
    //    in order.
    std::memset(dxg_.data(), 0, sizeof(float) * rows * C);
    for (int e = 0; e < E; ++e) {
        const int r0 = expert_offset_[e], n = expert_offset_[e + 1] - r0;
        if (n == 0) continue;
        nn::matmul_backward(dxg_.data() + size_t(r0) * C, g.q_w + size_t(e) * C * C,
                            g.q_b + size_t(e) * C, dq_.data() + size_t(r0) * C,
                            xg_.data() + size_t(r0) * C, p.q_w + size_t(e) * C * C, n, C, C);
    }
#pragma omp parallel for schedule(static) if (nn::worth_parallel(size_t(rows) * C))
    for (int n = 0; n < N; ++n) {
        float* d = dx + size_t(n) * C;
        for (int j = 0; j < K; ++j) {
            const float* src = dxg_.data() + size_t(row_of_[n * K + j]) * C;
            for (int c = 0; c < C; ++c) d[c] += src[c];
        }
    }

    // 5. Shared keys and values.
    nn::matmul_backward(dx, g.kv_w, g.kv_b, dkv_.data(), x, p.kv_w, N, C, 2 * C);
}

}  // namespace greenmoe

// Causal multi-head attention core, forward and backward. Each (batch, head) is one unit
// of work: its q/k/v slices are packed once into contiguous buffers, and the products run
// through a register-blocked kernel that visits only the causal (lower-triangular) part,
// 64 query rows at a time so a tile's scores stay in cache through softmax.
//
// Why not sgemm per head: OpenBLAS 0.3.21 (OpenMP build) does not fall back to one thread
// when called inside a parallel region; concurrent calls take its threaded path and
// serialise on its buffer lock, and its per-call overhead on these small shapes (64×256×64)
// keeps it near 10 GFLOP/s.
#include "greenmoe/nn/attention.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "greenmoe/nn/parallel.h"
#include "greenmoe/nn/vec_math.h"

namespace greenmoe::nn {

namespace {

// Query rows whose scores are held at once.
constexpr int kTile = 64;
// The kernel computes a kRows × kCols block of C = A·B (kCols = two 8-float vectors): 12
// accumulators, 2 vector loads and 6 broadcasts per step of the inner dimension. With 8
// accumulators (4 rows) the FMA latency is not hidden and it runs at half the speed.
constexpr int kRows = 6;
constexpr int kCols = 16;

inline int round_up(int x, int m) {
    return (x + m - 1) / m * m;
}

// c[r][0..16) = Σ_{k<kn} A(r, k) · b[k·ldb + 0..16) for r < MR, where A(r, k) is
// a[r·lda + k] or, kTransposedA, a[k·lda + r]. Pointers advance by increments so the
// loop keeps everything in registers.
template <int MR, bool kTransposedA>
inline void kernel(const float* a, ptrdiff_t lda, const float* b, ptrdiff_t ldb, int kn, float* c,
                   ptrdiff_t ldc) {
    const ptrdiff_t row_step = kTransposedA ? 1 : lda;
    const ptrdiff_t k_step = kTransposedA ? lda : 1;
    Vec8 acc0[MR];
    Vec8 acc1[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = Vec8{};
    for (int k = 0; k < kn; ++k) {
        const Vec8 b0 = load8(b);
        const Vec8 b1 = load8(b + 8);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
            const float s = a[r * row_step];
            acc0[r] += s * b0;
            acc1[r] += s * b1;
        }
        a += k_step;
        b += ldb;
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
        store8(c + r * ldc, acc0[r]);
        store8(c + r * ldc + 8, acc1[r]);
    }
}

template <bool kTransposedA>
inline void kernel_rows(int nr, const float* a, ptrdiff_t lda, const float* b, ptrdiff_t ldb,
                        int kn, float* c, ptrdiff_t ldc) {
    switch (nr) {
        case 6:
            kernel<6, kTransposedA>(a, lda, b, ldb, kn, c, ldc);
            break;
        case 5:
            kernel<5, kTransposedA>(a, lda, b, ldb, kn, c, ldc);
            break;
        case 4:
            kernel<4, kTransposedA>(a, lda, b, ldb, kn, c, ldc);
            break;
        case 3:
            kernel<3, kTransposedA>(a, lda, b, ldb, kn, c, ldc);
            break;
        case 2:
            kernel<2, kTransposedA>(a, lda, b, ldb, kn, c, ldc);
            break;
        default:
            kernel<1, kTransposedA>(a, lda, b, ldb, kn, c, ldc);
            break;
    }
}

// Shapes shared by forward and backward.
struct Geometry {
    int B, T, C, NH, hs;
    int hp;        // hs rounded up to kCols: row length of packed [T][hp] operands
    int tp;        // T rounded up to kCols: row length of packed [hs][tp] operands
    ptrdiff_t C3;  // row stride of qkv
    float scale;   // 1/√hs

    Geometry(int b, int t, int c, int nh)
        : B(b),
          T(t),
          C(c),
          NH(nh),
          hs(c / nh),
          hp(round_up(c / nh, kCols)),
          tp(round_up(t, kCols)),
          C3(3 * static_cast<ptrdiff_t>(c)),
          scale(1.0f / std::sqrt(static_cast<float>(c / nh))) {}

    size_t qkv_head(int b, int h) const {
        return static_cast<size_t>(b) * T * C3 + static_cast<size_t>(h) * hs;
    }
    size_t out_head(int b, int h) const {
        return static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * hs;
    }
    size_t att_head(int b, int h) const { return (static_cast<size_t>(b) * NH + h) * T * T; }
    // Multiply-adds of one causal product over all heads.
    size_t flops() const { return static_cast<size_t>(B) * NH * T * (T + 1) / 2 * hs; }
};

// Per-thread buffers, allocated once per call.
struct Workspace {
    std::vector<float> transposed;  // [hs][tp]
    std::vector<float> rows;        // [T][hp]
    std::vector<float> scores;      // [kTile][tp]
    float block[kRows * kCols];

    explicit Workspace(const Geometry& g)
        : transposed(static_cast<size_t>(g.hs) * g.tp),
          rows(static_cast<size_t>(g.T) * g.hp),
          scores(static_cast<size_t>(kTile) * g.tp) {}
};

// 8×8 transpose in registers: c[i][j] = r[j][i].
inline void transpose8(Vec8 (&r)[8]) {
    Vec8 t[8], u[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[2 * i + 1] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 2; ++i) {
        const Vec8 a = t[4 * i], b = t[4 * i + 1], c = t[4 * i + 2], d = t[4 * i + 3];
        u[4 * i] = __builtin_shufflevector(a, c, 0, 1, 8, 9, 4, 5, 12, 13);
        u[4 * i + 1] = __builtin_shufflevector(a, c, 2, 3, 10, 11, 6, 7, 14, 15);
        u[4 * i + 2] = __builtin_shufflevector(b, d, 0, 1, 8, 9, 4, 5, 12, 13);
        u[4 * i + 3] = __builtin_shufflevector(b, d, 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = __builtin_shufflevector(u[i], u[4 + i], 0, 1, 2, 3, 8, 9, 10, 11);
        r[4 + i] = __builtin_shufflevector(u[i], u[4 + i], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

// dst[d·tp + j] = src[j·ld + d] for j < n, d < hs; columns [n, tp) zeroed.
void pack_transposed(float* dst, const float* src, ptrdiff_t ld, int n, int hs, int tp) {
    const int n8 = n / 8 * 8;
    const int hs8 = hs / 8 * 8;
    for (int j0 = 0; j0 < n8; j0 += 8) {
        for (int d0 = 0; d0 < hs8; d0 += 8) {
            Vec8 r[8];
            for (int i = 0; i < 8; ++i) r[i] = load8(src + (j0 + i) * ld + d0);
            transpose8(r);
            for (int i = 0; i < 8; ++i) store8(dst + static_cast<size_t>(d0 + i) * tp + j0, r[i]);
        }
    }
    for (int d = 0; d < hs; ++d) {
        float* row = dst + static_cast<size_t>(d) * tp;
        for (int j = d < hs8 ? n8 : 0; j < n; ++j) row[j] = src[j * ld + d];
        std::fill(row + n, row + tp, 0.0f);
    }
}

// dst[j·hp + d] = src[j·ld + d] for j < n, d < hs; columns [hs, hp) zeroed.
void pack_rows(float* dst, const float* src, ptrdiff_t ld, int n, int hs, int hp) {
    for (int j = 0; j < n; ++j) {
        float* row = dst + static_cast<size_t>(j) * hp;
        const float* in = src + j * ld;
#pragma omp simd
        for (int d = 0; d < hs; ++d) row[d] = in[d];
        for (int d = hs; d < hp; ++d) row[d] = 0.0f;
    }
}

// s[r·tp + j] = Σ_d a[r·a_row + d] · bt[d·tp + j] for rows r < rows, over the causal part
// only: row t0 + r needs columns j ≤ t0 + r (whole 16-column blocks are computed).
void causal_scores(float* s, int tp, const float* a, ptrdiff_t a_row, const float* bt, int t0,
                   int rows, int hs) {
    for (int rb = 0; rb < rows; rb += kRows) {
        const int nr = std::min(kRows, rows - rb);
        const int last = t0 + rb + nr - 1;
        for (int jb = 0; jb <= last; jb += kCols) {
            kernel_rows<false>(nr, a + rb * a_row, a_row, bt + jb, tp, hs, s + rb * tp + jb, tp);
        }
    }
}

// For each row r < rows (query t0 + r, keys 0..t0+r): y[r][0..hs) (+)= Σ_j w[r·T + j] ·
// packed[j·hp + ·]. Entries of w right of the diagonal must be zero.
template <bool kAccumulate>
void causal_weighted_rows(float* y, ptrdiff_t y_row, const float* w, int T, const float* packed,
                          int hp, int t0, int rows, int hs, float* block) {
    for (int rb = 0; rb < rows; rb += kRows) {
        const int nr = std::min(kRows, rows - rb);
        const int kn = t0 + rb + nr;
        for (int db = 0; db < hp; db += kCols) {
            kernel_rows<false>(nr, w + static_cast<ptrdiff_t>(rb) * T, T, packed + db, hp, kn,
                               block, kCols);
            const int width = std::min(kCols, hs - db);
            for (int r = 0; r < nr; ++r) {
                float* dst = y + (rb + r) * y_row + db;
                const float* src = block + r * kCols;
                for (int d = 0; d < width; ++d) {
                    if constexpr (kAccumulate) {
                        dst[d] += src[d];
                    } else {
                        dst[d] = src[d];
                    }
                }
            }
        }
    }
}

// For every key row s < T: y[s][0..hs) += Σ_{t ≥ s} w[t·T + s] · packed[t·hp + ·], a
// transposed product over the later queries. Entries of w right of the diagonal must be
// zero within each block of kRows keys.
void causal_transposed_rows(float* y, ptrdiff_t y_row, const float* w, int T, const float* packed,
                            int hp, int hs, float* block) {
    for (int rb = 0; rb < T; rb += kRows) {
        const int nr = std::min(kRows, T - rb);
        const float* a = w + static_cast<ptrdiff_t>(rb) * T + rb;
        for (int db = 0; db < hp; db += kCols) {
            kernel_rows<true>(nr, a, T, packed + static_cast<ptrdiff_t>(rb) * hp + db, hp, T - rb,
                              block, kCols);
            const int width = std::min(kCols, hs - db);
            for (int r = 0; r < nr; ++r) {
                float* dst = y + (rb + r) * y_row + db;
                const float* src = block + r * kCols;
                for (int d = 0; d < width; ++d) dst[d] += src[d];
            }
        }
    }
}

// Softmax of the scaled causal scores s (row r holds query t0 + r) into att rows, zeros
// right of the diagonal.
void softmax_rows(float* att, int T, const float* s, int tp, int t0, int rows, float scale) {
    for (int r = 0; r < rows; ++r) {
        const float* x = s + static_cast<size_t>(r) * tp;
        float* p = att + static_cast<size_t>(r) * T;
        const int len = t0 + r + 1;
        const int body = len / 8 * 8;
        const int tail = len - body;
        Vec8 vmax = load_partial8(x + body, tail, x[0]);
        for (int j = 0; j < body; j += 8) vmax = max8(vmax, load8(x + j));
        const Vec8 mx = splat8(hmax8(vmax));
        Vec8 vsum{};
        for (int j = 0; j < body; j += 8) {
            const Vec8 e = exp8((load8(x + j) - mx) * scale);
            store8(p + j, e);
            vsum += e;
        }
        if (tail > 0) {
            Vec8 e = exp8((load_partial8(x + body, tail, x[0]) - mx) * scale);
            for (int i = tail; i < 8; ++i) e[i] = 0.0f;
            store_partial8(p + body, e, tail);
            vsum += e;
        }
        const float inv = 1.0f / hsum8(vsum);
#pragma omp simd
        for (int j = 0; j < len; ++j) p[j] *= inv;
        std::fill(p + len, p + T, 0.0f);
    }
}

// ds = att ⊙ (dp - Σ att·dp) · scale for the causal part of each row, and zeros for the
// next kRows - 1 columns: the products read whole blocks of kRows rows, which reach that
// far right of a row's diagonal.
void softmax_backward_rows(float* ds, const float* att, int T, const float* dp, int tp, int t0,
                           int rows, float scale) {
    for (int r = 0; r < rows; ++r) {
        const float* g = dp + static_cast<size_t>(r) * tp;
        const float* p = att + static_cast<size_t>(r) * T;
        float* d = ds + static_cast<size_t>(r) * T;
        const int len = t0 + r + 1;
        Vec8 vdot{};
        const int body = len / 8 * 8;
        for (int j = 0; j < body; j += 8) vdot += load8(p + j) * load8(g + j);
        vdot +=
            load_partial8(p + body, len - body, 0.0f) * load_partial8(g + body, len - body, 0.0f);
        const float dot = hsum8(vdot);
#pragma omp simd
        for (int j = 0; j < len; ++j) d[j] = p[j] * (g[j] - dot) * scale;
        std::fill(d + len, d + std::min(T, len + kRows - 1), 0.0f);
    }
}

void forward_head(float* out, float* att, const float* qkv, const Geometry& g, int b, int h,
                  Workspace& ws) {
    const float* q = qkv + g.qkv_head(b, h);
    const float* k = q + g.C;
    const float* v = q + 2 * static_cast<ptrdiff_t>(g.C);
    float* a = att + g.att_head(b, h);
    float* y = out + g.out_head(b, h);
    pack_transposed(ws.transposed.data(), k, g.C3, g.T, g.hs, g.tp);
    pack_rows(ws.rows.data(), v, g.C3, g.T, g.hs, g.hp);
    for (int t0 = 0; t0 < g.T; t0 += kTile) {
        const int rows = std::min(kTile, g.T - t0);
        float* a_tile = a + static_cast<size_t>(t0) * g.T;
        causal_scores(ws.scores.data(), g.tp, q + t0 * g.C3, g.C3, ws.transposed.data(), t0, rows,
                      g.hs);
        softmax_rows(a_tile, g.T, ws.scores.data(), g.tp, t0, rows, g.scale);
        causal_weighted_rows<false>(y + static_cast<size_t>(t0) * g.C, g.C, a_tile, g.T,
                                    ws.rows.data(), g.hp, t0, rows, g.hs, ws.block);
    }
}

void backward_head(float* dqkv, float* scratch, const float* dout, const float* qkv,
                   const float* att, const Geometry& g, int b, int h, Workspace& ws) {
    const float* q = qkv + g.qkv_head(b, h);
    const float* k = q + g.C;
    const float* v = q + 2 * static_cast<ptrdiff_t>(g.C);
    const float* dy = dout + g.out_head(b, h);
    const float* a = att + g.att_head(b, h);
    float* ds = scratch + g.att_head(b, h);
    float* dq = dqkv + g.qkv_head(b, h);
    float* dk = dq + g.C;
    float* dv = dq + 2 * static_cast<ptrdiff_t>(g.C);

    // d(probabilities) = dout·vᵀ, then d(scores) and dq = d(scores)·k, a tile at a time.
    pack_transposed(ws.transposed.data(), v, g.C3, g.T, g.hs, g.tp);
    pack_rows(ws.rows.data(), k, g.C3, g.T, g.hs, g.hp);
    for (int t0 = 0; t0 < g.T; t0 += kTile) {
        const int rows = std::min(kTile, g.T - t0);
        const size_t offset = static_cast<size_t>(t0) * g.T;
        causal_scores(ws.scores.data(), g.tp, dy + static_cast<size_t>(t0) * g.C, g.C,
                      ws.transposed.data(), t0, rows, g.hs);
        softmax_backward_rows(ds + offset, a + offset, g.T, ws.scores.data(), g.tp, t0, rows,
                              g.scale);
        causal_weighted_rows<true>(dq + t0 * g.C3, g.C3, ds + offset, g.T, ws.rows.data(), g.hp, t0,
                                   rows, g.hs, ws.block);
    }
    // dk = d(scores)ᵀ·q and dv = attᵀ·dout, each key gathering over its later queries.
    pack_rows(ws.rows.data(), q, g.C3, g.T, g.hs, g.hp);
    causal_transposed_rows(dk, g.C3, ds, g.T, ws.rows.data(), g.hp, g.hs, ws.block);
    pack_rows(ws.rows.data(), dy, g.C, g.T, g.hs, g.hp);
    causal_transposed_rows(dv, g.C3, a, g.T, ws.rows.data(), g.hp, g.hs, ws.block);
}

}  // namespace

void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH) {
    const Geometry g(B, T, C, NH);
    const int units = B * NH;
#pragma omp parallel if (units > 1 && g.flops() >= kParallelMinFlops)
    {
        Workspace ws(g);
#pragma omp for schedule(static)
        for (int u = 0; u < units; ++u) forward_head(out, att, qkv, g, u / NH, u % NH, ws);
    }
}

void attention_backward(float* dqkv, float* scratch, const float* dout, const float* qkv,
                        const float* att, int B, int T, int C, int NH) {
    const Geometry g(B, T, C, NH);
    const int units = B * NH;
#pragma omp parallel if (units > 1 && g.flops() >= kParallelMinFlops)
    {
        Workspace ws(g);
#pragma omp for schedule(static)
        for (int u = 0; u < units; ++u) {
            backward_head(dqkv, scratch, dout, qkv, att, g, u / NH, u % NH, ws);
        }
    }
}

}  // namespace greenmoe::nn

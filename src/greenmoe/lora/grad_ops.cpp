// LoRA training's operations and their backward passes (see grad_ops.h).
#include "greenmoe/lora/grad_ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "greenmoe/core/rng.h"
#include "greenmoe/hf/attention.h"
#include "greenmoe/hf/kernels.h"
#include "greenmoe/hf/ops.h"

namespace greenmoe::lora {

namespace {

int to_int(int64_t v) {
    return static_cast<int>(v);
}

// Rows of a converted weight tile: about 1 MiB of fp32.
int64_t tile_rows(int64_t cols) {
    return std::max<int64_t>(1, (int64_t{1} << 18) / cols);
}

}  // namespace

void linear_input_grad(const float* dy, int64_t n, const hf::Mat& w, float* dx) {
    if (n <= 0 || w.rows <= 0) return;
    const int64_t rows = w.rows, cols = w.cols;
    if (w.dtype == DType::F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, to_int(n), to_int(cols),
                    to_int(rows), 1.0f, dy, to_int(rows), reinterpret_cast<const float*>(w.data),
                    to_int(cols), 1.0f, dx, to_int(cols));
        return;
    }
    // Half-precision weights: converted a tile of rows at a time, each tile's share of the
    // product added in.
    const int64_t step = std::min(rows, tile_rows(cols));
    std::vector<float> tile(static_cast<size_t>(step * cols));
    for (int64_t r0 = 0; r0 < rows; r0 += step) {
        const int64_t m = std::min(step, rows - r0);
#pragma omp parallel for schedule(static) if (m * cols >= (int64_t{1} << 14))
        for (int64_t r = 0; r < m; r += 16)
            hf::convert_rows(w, r0 + r, std::min<int64_t>(16, m - r), tile.data() + r * cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, to_int(n), to_int(cols), to_int(m),
                    1.0f, dy + r0, to_int(rows), tile.data(), to_int(cols), 1.0f, dx, to_int(cols));
    }
}

bool AdaptedLinear::kept(int64_t i, int64_t j, int64_t in, float keep) const {
    const int64_t token = tokens_ != nullptr ? tokens_[i] : i;
    return rng_uniform(key_, static_cast<uint64_t>(token * in + j)) < keep;
}

void AdaptedLinear::forward(const float* x, int64_t n, float* y, LinearTape* tape) const {
    hf::linear(x, n, w_, bias_, y);
    if (target_ == nullptr || n <= 0) return;
    const LoraTarget& t = *target_;
    const float* a = params_->values() + t.a;
    // This call's rows of B (all of them unless w is a band of the target's rows).
    const float* b = params_->values() + t.b + row0_ * t.rank;
    const int64_t out = w_.rows;
    LinearTape local;
    LinearTape& tp = tape != nullptr ? *tape : local;
    const float* in = x;
    if (dropout_ > 0.0) {
        // Inverted dropout on the adapter's input, as torch.nn.Dropout in PEFT's LoRA layer.
        tp.dropped.resize(static_cast<size_t>(n * t.in));
        const auto keep = static_cast<float>(1.0 - dropout_);
        const float gain = 1.0f / keep;
        for (int64_t i = 0; i < n; ++i) {
            for (int64_t j = 0; j < t.in; ++j) {
                const int64_t at = i * t.in + j;
                tp.dropped[static_cast<size_t>(at)] = kept(i, j, t.in, keep) ? x[at] * gain : 0.0f;
            }
        }
        in = tp.dropped.data();
    }
    tp.u.resize(static_cast<size_t>(n * t.rank));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, to_int(n), to_int(t.rank), to_int(t.in),
                1.0f, in, to_int(t.in), a, to_int(t.in), 0.0f, tp.u.data(), to_int(t.rank));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, to_int(n), to_int(out), to_int(t.rank),
                t.scale, tp.u.data(), to_int(t.rank), b, to_int(t.rank), 1.0f, y, to_int(out));
}

void AdaptedLinear::backward(const float* x, const float* dy, int64_t n, const LinearTape& tape,
                             float* dx) const {
    if (n <= 0) return;
    linear_input_grad(dy, n, w_, dx);
    if (target_ == nullptr) return;
    const LoraTarget& t = *target_;
    const float* a = params_->values() + t.a;
    const float* b = params_->values() + t.b + row0_ * t.rank;
    float* ga = params_->grads() + t.a;
    float* gb = params_->grads() + t.b + row0_ * t.rank;
    const int64_t out = w_.rows;
    const float* in = dropout_ > 0.0 ? tape.dropped.data() : x;
    // dB += s · dyᵀ · u; g = dy · B; dA += s · gᵀ · in; d(in) = s · g · A.
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, to_int(out), to_int(t.rank), to_int(n),
                t.scale, dy, to_int(out), tape.u.data(), to_int(t.rank), 1.0f, gb, to_int(t.rank));
    std::vector<float> g(static_cast<size_t>(n * t.rank));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, to_int(n), to_int(t.rank), to_int(out),
                1.0f, dy, to_int(out), b, to_int(t.rank), 0.0f, g.data(), to_int(t.rank));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, to_int(t.rank), to_int(t.in), to_int(n),
                t.scale, g.data(), to_int(t.rank), in, to_int(t.in), 1.0f, ga, to_int(t.in));
    if (dropout_ <= 0.0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, to_int(n), to_int(t.in),
                    to_int(t.rank), t.scale, g.data(), to_int(t.rank), a, to_int(t.in), 1.0f, dx,
                    to_int(t.in));
        return;
    }
    std::vector<float> din(static_cast<size_t>(n * t.in));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, to_int(n), to_int(t.in), to_int(t.rank),
                t.scale, g.data(), to_int(t.rank), a, to_int(t.in), 0.0f, din.data(), to_int(t.in));
    const auto keep = static_cast<float>(1.0 - dropout_);
    const float gain = 1.0f / keep;
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < t.in; ++j) {
            const int64_t at = i * t.in + j;
            if (kept(i, j, t.in, keep)) dx[at] += din[size_t(at)] * gain;
        }
    }
}

void rms_norm_forward(const float* x, int64_t n, int64_t dim, int64_t sx,
                      const std::vector<float>& weight, double eps, float* y, int64_t sy,
                      float* inv) {
    for (int64_t i = 0; i < n; ++i) {
        const float* row = x + i * sx;
        double ss = 0.0;
        for (int64_t j = 0; j < dim; ++j) ss += double(row[j]) * row[j];
        // As hf::rms_norm rounds it, so that training sees the engine's activations.
        const auto r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
        inv[i] = r;
        float* out = y + i * sy;
        for (int64_t j = 0; j < dim; ++j) out[j] = row[j] * r * weight[static_cast<size_t>(j)];
    }
}

void rms_norm_backward(const float* x, const float* inv, const float* dy, int64_t n, int64_t dim,
                       int64_t sx, int64_t sdy, const std::vector<float>& weight, float* dx,
                       int64_t sdx) {
    // y = x·r·w with r = (Σx²/d + ε)^(−1/2): dx = r·(dy·w) − r³·x·Σ(dy·w·x)/d.
    for (int64_t i = 0; i < n; ++i) {
        const float* xr = x + i * sx;
        const float* g = dy + i * sdy;
        double dot = 0.0;
        for (int64_t j = 0; j < dim; ++j) dot += double(g[j]) * weight[size_t(j)] * xr[j];
        const double r = inv[i];
        const double c = r * r * r * dot / static_cast<double>(dim);
        float* out = dx + i * sdx;
        for (int64_t j = 0; j < dim; ++j)
            out[j] += static_cast<float>(r * g[j] * weight[size_t(j)] - c * xr[j]);
    }
}

void silu_gate_backward(const float* g, const float* u, const float* dact, int64_t count, float* dg,
                        float* du) {
    for (int64_t i = 0; i < count; ++i) {
        const double x = g[i];
        const double sig = 1.0 / (1.0 + std::exp(-x));
        const double silu = x * sig;
        du[i] = static_cast<float>(dact[i] * silu);
        dg[i] = static_cast<float>(dact[i] * u[i] * sig * (1.0 + x * (1.0 - sig)));
    }
}

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       float* out, float* probs) {
    const int64_t t = s.t, group = s.hq / s.hkv;
#pragma omp parallel for schedule(static) if (s.hq > 1 && t * t * s.kd >= (1 << 14))
    for (int64_t h = 0; h < s.hq; ++h) {
        const int64_t kvh = h / group;
        float* p = probs + h * t * t;
        // Scores scale · Q Kᵀ, then each row's causal (windowed) softmax in place.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, to_int(t), to_int(t), to_int(s.kd),
                    static_cast<float>(s.scale), q + h * s.kd, to_int(s.hq * s.kd), k + kvh * s.kd,
                    to_int(s.hkv * s.kd), 0.0f, p, to_int(t));
        for (int64_t i = 0; i < t; ++i) hf::causal_softmax_row(p + i * t, i, s.window, t);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, to_int(t), to_int(s.vd), to_int(t),
                    1.0f, p, to_int(t), v + kvh * s.vd, to_int(s.hkv * s.vd), 0.0f, out + h * s.vd,
                    to_int(s.hq * s.vd));
    }
}

void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv) {
    const int64_t t = s.t, group = s.hq / s.hkv;
    // Query heads that share a key/value head add into the same dk, dv columns: one thread
    // per key/value head, its query heads in order (the same sums whatever the threads).
#pragma omp parallel for schedule(static) if (s.hkv > 1 && t * t * s.kd >= (1 << 14))
    for (int64_t kvh = 0; kvh < s.hkv; ++kvh) {
        std::vector<float> ds(static_cast<size_t>(t * t));
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
            const float* p = probs + h * t * t;
            // dV += Pᵀ dO; dP = dO Vᵀ.
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, to_int(t), to_int(s.vd), to_int(t),
                        1.0f, p, to_int(t), dout + h * s.vd, to_int(s.hq * s.vd), 1.0f,
                        dv + kvh * s.vd, to_int(s.hkv * s.vd));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, to_int(t), to_int(t), to_int(s.vd),
                        1.0f, dout + h * s.vd, to_int(s.hq * s.vd), v + kvh * s.vd,
                        to_int(s.hkv * s.vd), 0.0f, ds.data(), to_int(t));
            // Softmax: dS = P ⊙ (dP − Σ_j dP·P) per row (zero where P is).
            for (int64_t i = 0; i < t; ++i) {
                const float* pr = p + i * t;
                float* dr = ds.data() + i * t;
                double dot = 0.0;
                for (int64_t j = 0; j <= i; ++j) dot += double(dr[j]) * pr[j];
                for (int64_t j = 0; j < t; ++j)
                    dr[j] = j <= i ? static_cast<float>(pr[j] * (dr[j] - dot)) : 0.0f;
            }
            // dQ += scale · dS K; dK += scale · dSᵀ Q.
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, to_int(t), to_int(s.kd),
                        to_int(t), static_cast<float>(s.scale), ds.data(), to_int(t),
                        k + kvh * s.kd, to_int(s.hkv * s.kd), 1.0f, dq + h * s.kd,
                        to_int(s.hq * s.kd));
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, to_int(t), to_int(s.kd), to_int(t),
                        static_cast<float>(s.scale), ds.data(), to_int(t), q + h * s.kd,
                        to_int(s.hq * s.kd), 1.0f, dk + kvh * s.kd, to_int(s.hkv * s.kd));
        }
    }
}

}  // namespace greenmoe::lora

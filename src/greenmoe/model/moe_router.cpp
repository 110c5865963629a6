// MoeRouter: logits, draws, selections, gate weights, auxiliary losses and their backward
// (see moe_router.h and docs/moe.md for the exact definitions implemented here).
#include "greenmoe/model/moe_router.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/nn/matmul.h"
#include "greenmoe/nn/parallel.h"

namespace greenmoe {

namespace {

// The study's temperature for the condmlp guesser and the penalty's softmax.
constexpr float kGuessTemperature = 1.66f;
// Rows of the fixed-size per-token arrays below; GptConfig caps n_experts at this.
constexpr int kMaxExperts = 256;

void softmax_row(float* out, const float* in, int E, float scale = 1.0f) {
    float mx = in[0] * scale;
    for (int e = 1; e < E; ++e) mx = std::max(mx, in[e] * scale);
    double sum = 0.0;
    for (int e = 0; e < E; ++e) {
        out[e] = std::exp(in[e] * scale - mx);
        sum += out[e];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int e = 0; e < E; ++e) out[e] *= inv;
}

double logsumexp_row(const float* in, int E) {
    double mx = in[0];
    for (int e = 1; e < E; ++e) mx = std::max(mx, static_cast<double>(in[e]));
    double sum = 0.0;
    for (int e = 0; e < E; ++e) sum += std::exp(in[e] - mx);
    return mx + std::log(sum);
}

// Backward of q = softmax(z) for one row: dz += q ⊙ (dq − Σ q·dq) · scale.
void softmax_row_backward(float* dz, const float* q, const float* dq, int E, float scale = 1.0f) {
    double dot = 0.0;
    for (int e = 0; e < E; ++e) dot += static_cast<double>(q[e]) * dq[e];
    for (int e = 0; e < E; ++e) dz[e] += scale * q[e] * static_cast<float>(dq[e] - dot);
}

float softplus(float v) {
    return v > 20.0f ? v : std::log1p(std::exp(v));
}
float sigmoid(float v) {
    return 1.0f / (1.0f + std::exp(-v));
}

constexpr uint64_t kEpsStream = 1, kKeepStream = 2, kPathStream = 3;

}  // namespace

MoeRouter::MoeRouter(MoeKind kind, int C, int E, int K, int max_tokens, bool condmlp_eval_sample)
    : kind_(kind),
      C_(C),
      E_(E),
      K_(K),
      max_tokens_(max_tokens),
      condmlp_eval_sample_(condmlp_eval_sample) {
    check(E >= 1 && E <= kMaxExperts, "MoE router: {} experts, expected 1 to {}", E, kMaxExperts);
    check(K >= 1 && K <= E, "MoE router: {} choices per token with {} experts", K, E);
    check(kind != MoeKind::GShard || K == 2, "MoE router: gshard makes 2 choices, not {}", K);
    check(kind == MoeKind::Olnn || kind == MoeKind::GShard || K == 1,
          "MoE router: switch and condmlp make 1 choice, not {}", K);
    check(max_tokens >= 1, "MoE router: max_tokens must be ≥ 1, got {}", max_tokens);
    const size_t N = max_tokens, Es = E, Ks = K;
    h_.reset(N * Es);
    hn_.reset(kind == MoeKind::Olnn ? N * Es : 0);
    hsel_.reset(N * Es);
    p_.reset(N * Es);
    eps_.reset(N * Es);
    u_keep_.reset(N);
    u_path_.reset(N);
    choice_.assign(N * Ks, -1);
    gate_.assign(N * Ks, 0.0f);
    kept_.assign(N * Ks, 0);
    first_counts_.assign(Es, 0);
    stats_.counts.assign(Es, 0);
    dgate_.assign(N * Ks, 0.0f);
    dlogits_.reset(N * Es);
    dsel_.reset(N * Es);
    dp_.reset(N * Es);
    q_.reset(N * Es);
    dhn_.reset(kind == MoeKind::Olnn ? N * Es : 0);
    P_.assign(Es, 0.0);
    imp_.assign(Es, 0.0);
    qbar_.assign(Es, 0.0);
    dimp_.assign(Es, 0.0);
}

void MoeRouter::set_draws(const float* eps, const float* u_keep, const float* u_path) {
    eps_override_ = eps;
    u_keep_override_ = u_keep;
    u_path_override_ = u_path;
}

void MoeRouter::forward(const float* x, const MoeRouterTensors& p, int N, bool training,
                        const float* bias, uint64_t rng_key) {
    check(N >= 1 && N <= max_tokens_, "MoE router: {} tokens exceed the allocated {}", N,
          max_tokens_);
    check(!frozen_ || N == N_, "MoE router: frozen routing needs the same {} tokens", N_);
    N_ = N;
    training_ = training;
    const int E = E_, K = K_, C = C_;
    float* h = h_.data();
    float* hsel = hsel_.data();
    float* prob = p_.data();

    // Random draws, keyed by (forward key, token): independent of the thread count.
    const float* eps = eps_override_ ? eps_override_ : eps_.data();
    const float* u_keep = u_keep_override_ ? u_keep_override_ : u_keep_.data();
    const float* u_path = u_path_override_ ? u_path_override_ : u_path_.data();
    if (training || (kind_ == MoeKind::CondMlp && condmlp_eval_sample_)) {
        const uint64_t ke = greenmoe::rng_key(rng_key, kEpsStream);
        const uint64_t kk = greenmoe::rng_key(rng_key, kKeepStream);
        const uint64_t kp = greenmoe::rng_key(rng_key, kPathStream);
#pragma omp parallel for schedule(static) if (nn::worth_parallel(size_t(N) * E))
        for (int n = 0; n < N; ++n) {
            if (!eps_override_ && kind_ == MoeKind::Olnn) {
                for (int e = 0; e < E; ++e) eps_.data()[n * E + e] = rng_normal(ke, n * E + e);
            }
            if (!u_keep_override_) u_keep_.data()[n] = rng_uniform(kk, n);
            if (!u_path_override_) u_path_.data()[n] = rng_uniform(kp, n);
        }
    }

    if (kind_ == MoeKind::CondMlp) {
        nn::matmul_forward(h, x, p.guess_w, p.guess_b, N, C, E);
    } else {
        nn::matmul_forward(h, x, p.router_w, nullptr, N, C, E);
    }
    if (kind_ == MoeKind::Olnn && training) {
        nn::matmul_forward(hn_.data(), x, p.noise_w, nullptr, N, C, E);
        for (int i = 0; i < N * E; ++i) hsel[i] = h[i] + eps[i] * softplus(hn_.data()[i]);
    } else {
        std::memcpy(hsel, h, sizeof(float) * N * E);
    }

    std::fill(first_counts_.begin(), first_counts_.end(), 0);
    std::fill(stats_.counts.begin(), stats_.counts.end(), 0);
    double entropy = 0.0;
    for (int n = 0; n < N; ++n) {
        const float* hs = hsel + n * E;
        float* pr = prob + n * E;
        const float scale = kind_ == MoeKind::CondMlp ? 1.0f / kGuessTemperature : 1.0f;
        softmax_row(pr, hs, E, scale);
        for (int e = 0; e < E; ++e) entropy -= pr[e] > 0 ? pr[e] * std::log(pr[e]) : 0.0;

        // Selection scores: the weights' logits plus the balancing bias. condmlp adds the
        // bias inside its temperature, (g + b) / 1.66, as the study's code does.
        float score[kMaxExperts];
        for (int e = 0; e < E; ++e) score[e] = (hs[e] + (bias ? bias[e] : 0.0f)) * scale;
        int* ch = choice_.data() + n * K;
        float* gate = gate_.data() + n * K;
        uint8_t* kept = kept_.data() + n * K;
        if (frozen_) {
            // Keep the previous selection.
        } else if (kind_ == MoeKind::CondMlp && (training || condmlp_eval_sample_)) {
            float q[kMaxExperts];
            softmax_row(q, score, E);
            int t = E - 1;
            double cumulative = 0.0;
            for (int e = 0; e < E; ++e) {
                cumulative += q[e];
                if (u_path[n] < cumulative) {
                    t = e;
                    break;
                }
            }
            ch[0] = t;
        } else {
            // Top-K by score, ties to the lower index.
            bool taken[kMaxExperts] = {};
            for (int j = 0; j < K; ++j) {
                int best = -1;
                for (int e = 0; e < E; ++e) {
                    if (!taken[e] && (best < 0 || score[e] > score[best])) best = e;
                }
                taken[best] = true;
                ch[j] = best;
            }
        }
        if (!frozen_) {
            for (int j = 0; j < K; ++j) kept[j] = 1;
        }
        switch (kind_) {
            case MoeKind::Olnn: {
                float mx = hs[ch[0]];
                for (int j = 1; j < K; ++j) mx = std::max(mx, hs[ch[j]]);
                double sum = 0.0;
                for (int j = 0; j < K; ++j) {
                    gate[j] = std::exp(hs[ch[j]] - mx);
                    sum += gate[j];
                }
                for (int j = 0; j < K; ++j) gate[j] = static_cast<float>(gate[j] / sum);
                break;
            }
            case MoeKind::Switch:
            case MoeKind::CondMlp:
                gate[0] = pr[ch[0]];
                break;
            case MoeKind::GShard: {
                const float g1 = pr[ch[0]], g2 = pr[ch[1]];
                gate[0] = g1 / (g1 + g2);
                gate[1] = g2 / (g1 + g2);
                if (training && !frozen_) kept[1] = u_keep[n] < std::min(1.0f, 2.0f * gate[1]);
                break;
            }
        }
        first_counts_[ch[0]] += 1;
        for (int j = 0; j < K; ++j) {
            if (kept[j]) stats_.counts[ch[j]] += 1;
        }
    }
    stats_.entropy = entropy / N;
    if (!frozen_) {
        stats_.choices = 0;
        for (int e = 0; e < E; ++e) stats_.choices += stats_.counts[e];
        stats_.dropped = 0;
    }
    compute_aux(N);
}

void MoeRouter::compute_aux(int N) {
    const int E = E_, K = K_;
    const float* prob = p_.data();
    // load: E · Σ f_i P_i.
    double load = 0.0;
    std::vector<double>& P = P_;
    std::vector<double>& imp = imp_;
    std::fill(P.begin(), P.end(), 0.0);
    std::fill(imp.begin(), imp.end(), 0.0);
    for (int n = 0; n < N; ++n) {
        for (int e = 0; e < E; ++e) P[e] += prob[n * E + e];
        for (int j = 0; j < K; ++j) {
            if (kept_[n * K + j]) imp[choice_[n * K + j]] += gate_[n * K + j];
        }
    }
    for (int e = 0; e < E; ++e) {
        P[e] /= N;
        load += static_cast<double>(first_counts_[e]) / N * P[e];
    }
    stats_.aux_load = E * load;
    // importance: CV² of Σ gate weights per expert.
    double mean = 0.0;
    for (double v : imp) mean += v;
    mean /= E;
    double var = 0.0;
    for (double v : imp) var += (v - mean) * (v - mean);
    var /= E;
    stats_.aux_importance = mean > 0 ? var / (mean * mean) : 0.0;
    // z-loss and penalty on the clean logits.
    double z = 0.0, a = 0.0;
    std::vector<double>& qbar = qbar_;
    std::fill(qbar.begin(), qbar.end(), 0.0);
    float q[kMaxExperts];
    for (int n = 0; n < N; ++n) {
        const float* h = h_.data() + n * E;
        const double lse = logsumexp_row(h, E);
        z += lse * lse;
        softmax_row(q, h, E, 1.0f / kGuessTemperature);
        for (int e = 0; e < E; ++e) {
            a += q[e] * (1.0 - q[e]);
            qbar[e] += q[e];
        }
    }
    stats_.aux_z = z / N;
    double b = 0.0;
    for (int e = 0; e < E; ++e) {
        qbar[e] /= N;
        b += qbar[e] * (1.0 - qbar[e]);
    }
    stats_.aux_penalty = a / (static_cast<double>(N) * E) + (1.0 / E - b / E);
}

double MoeRouter::aux_loss(const MoeAuxWeights& w) const {
    return w.load * stats_.aux_load + w.importance * stats_.aux_importance + w.z * stats_.aux_z +
           w.penalty * stats_.aux_penalty;
}

void MoeRouter::backward(float* dx, const MoeRouterTensors& g, const float* dgate_in,
                         const float* x, const MoeRouterTensors& p, const MoeAuxWeights& w,
                         float aux_scale) {
    const int N = N_, E = E_, K = K_, C = C_;
    const float* prob = p_.data();
    // dsel: gradient w.r.t. the weight logits (olnn: h'; switch/gshard: h; condmlp: g/1.66
    // scaled back below). dlogits: gradient w.r.t. the clean logits h (or g).
    float* dsel = dsel_.data();
    float* dlog = dlogits_.data();
    float* dp = dp_.data();
    std::memset(dsel, 0, sizeof(float) * N * E);
    std::memset(dlog, 0, sizeof(float) * N * E);
    std::memset(dp, 0, sizeof(float) * N * E);

    // 1. Gate-weight gradients: the caller's, plus the importance loss (kept choices).
    float* dgate = dgate_.data();
    std::memcpy(dgate, dgate_in, sizeof(float) * N * K);
    if (w.importance > 0) {
        std::vector<double>& imp = imp_;
        std::fill(imp.begin(), imp.end(), 0.0);
        for (int i = 0; i < N * K; ++i) {
            if (kept_[i]) imp[choice_[i]] += gate_[i];
        }
        double mean = 0.0;
        for (double v : imp) mean += v;
        mean /= E;
        double var = 0.0;
        for (double v : imp) var += (v - mean) * (v - mean);
        var /= E;
        if (mean > 0) {
            const double s = static_cast<double>(w.importance) * aux_scale;
            std::vector<double>& dimp = dimp_;
            for (int e = 0; e < E; ++e) {
                dimp[e] = s * (2.0 * (imp[e] - mean) / (E * mean * mean) -
                               2.0 * var / (E * mean * mean * mean));
            }
            for (int i = 0; i < N * K; ++i) {
                if (kept_[i]) dgate[i] += static_cast<float>(dimp[choice_[i]]);
            }
        }
    }

    // 2. Gate weights → their logits.
    for (int n = 0; n < N; ++n) {
        const int* ch = choice_.data() + n * K;
        const float* gate = gate_.data() + n * K;
        const float* dg = dgate + n * K;
        switch (kind_) {
            case MoeKind::Olnn: {
                double dot = 0.0;
                for (int j = 0; j < K; ++j) dot += static_cast<double>(gate[j]) * dg[j];
                for (int j = 0; j < K; ++j) {
                    dsel[n * E + ch[j]] += gate[j] * static_cast<float>(dg[j] - dot);
                }
                break;
            }
            case MoeKind::Switch:
            case MoeKind::CondMlp:
                dp[n * E + ch[0]] += dg[0];
                break;
            case MoeKind::GShard: {
                const float p1 = prob[n * E + ch[0]], p2 = prob[n * E + ch[1]];
                const float s2 = (p1 + p2) * (p1 + p2);
                dp[n * E + ch[0]] += (dg[0] - dg[1]) * p2 / s2;
                dp[n * E + ch[1]] += (dg[1] - dg[0]) * p1 / s2;
                break;
            }
        }
    }
    // 3. Load loss: through P only (f is a constant).
    if (w.load > 0) {
        const float s = w.load * aux_scale * E / N;
        for (int n = 0; n < N; ++n) {
            for (int e = 0; e < E; ++e) dp[n * E + e] += s * first_counts_[e] / N;
        }
    }
    // 4. p = softmax(weight logits) → dsel (condmlp: p = softmax(g/1.66)).
    const float p_scale = kind_ == MoeKind::CondMlp ? 1.0f / kGuessTemperature : 1.0f;
    for (int n = 0; n < N; ++n)
        softmax_row_backward(dsel + n * E, prob + n * E, dp + n * E, E, p_scale);
    // 5. z-loss and penalty on the clean logits.
    if (w.z > 0 || w.penalty > 0) {
        std::vector<double>& qbar = qbar_;
        std::fill(qbar.begin(), qbar.end(), 0.0);
        float* q = q_.data();
        for (int n = 0; n < N; ++n) {
            softmax_row(q + n * E, h_.data() + n * E, E, 1.0f / kGuessTemperature);
            for (int e = 0; e < E; ++e) qbar[e] += q[n * E + e];
        }
        for (int e = 0; e < E; ++e) qbar[e] /= N;
        float pz[kMaxExperts], dq[kMaxExperts];
        for (int n = 0; n < N; ++n) {
            const float* h = h_.data() + n * E;
            if (w.z > 0) {
                const double lse = logsumexp_row(h, E);
                softmax_row(pz, h, E);
                const float s = static_cast<float>(w.z * aux_scale * 2.0 * lse / N);
                for (int e = 0; e < E; ++e) dlog[n * E + e] += s * pz[e];
            }
            if (w.penalty > 0) {
                const float s = w.penalty * aux_scale / (static_cast<float>(N) * E);
                for (int e = 0; e < E; ++e) {
                    const float qe = q[n * E + e];
                    dq[e] = s * ((1.0f - 2.0f * qe) - (1.0f - 2.0f * static_cast<float>(qbar[e])));
                }
                softmax_row_backward(dlog + n * E, q + n * E, dq, E, 1.0f / kGuessTemperature);
            }
        }
    }
    // 6. Weight logits → clean logits (and olnn's noise branch).
    if (kind_ == MoeKind::Olnn && training_) {
        const float* eps = eps_override_ ? eps_override_ : eps_.data();
        float* dhn = dhn_.data();
        for (int i = 0; i < N * E; ++i) {
            dlog[i] += dsel[i];
            dhn[i] = dsel[i] * eps[i] * sigmoid(hn_.data()[i]);
        }
        nn::matmul_backward(dx, g.noise_w, nullptr, dhn, x, p.noise_w, N, C, E);
    } else {
        for (int i = 0; i < N * E; ++i) dlog[i] += dsel[i];
    }
    if (kind_ == MoeKind::CondMlp) {
        nn::matmul_backward(dx, g.guess_w, g.guess_b, dlog, x, p.guess_w, N, C, E);
    } else {
        nn::matmul_backward(dx, g.router_w, nullptr, dlog, x, p.router_w, N, C, E);
    }
}

}  // namespace greenmoe

// MoeMlp: capacity, grouped expert products and their backward around the shared MoeRouter
// (see moe_mlp.h and docs/moe.md for the exact definitions implemented here).
#include "greenmoe/model/moe_mlp.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "greenmoe/core/error.h"
#include "greenmoe/nn/gelu.h"
#include "greenmoe/nn/grouped_bias.h"
#include "greenmoe/nn/matmul.h"

namespace greenmoe {

MoeKind moe_kind_from_name(const std::string& name) {
    if (name == "olnn") return MoeKind::Olnn;
    if (name == "switch") return MoeKind::Switch;
    if (name == "gshard") return MoeKind::GShard;
    if (name == "condmlp") return MoeKind::CondMlp;
    fail("model.mlp: '{}' is not an MoE variant (olnn, switch, gshard, condmlp)", name);
}

MoeMlp::MoeMlp(const GptConfig& config, int max_tokens)
    : kind_(moe_kind_from_name(config.mlp)),
      C_(config.n_embd),
      H_(config.hidden()),
      E_(config.n_experts),
      K_(config.choices_per_token()),
      max_tokens_(max_tokens),
      cf_train_(config.capacity_factor),
      cf_eval_(config.eval_capacity_factor),
      router_(kind_, config.n_embd, config.n_experts, config.choices_per_token(), max_tokens,
              config.condmlp_eval_sample) {
    const size_t N = max_tokens, E = E_, K = K_;
    const size_t rows = kind_ == MoeKind::CondMlp ? N : N * K;
    admitted_.assign(N * K, 0);
    row_of_.assign(N * K, -1);
    row_token_.assign(rows, 0);
    expert_offset_.assign(E + 1, 0);
    load_.assign(E, 0);
    fill_.assign(E, 0);
    xg_.reset(kind_ == MoeKind::CondMlp ? 0 : rows * C_);
    hpre_.reset(rows * H_);
    hact_.reset(rows * H_);
    out_.reset(rows * C_);
    dout_.reset(rows * C_);
    dh_act_.reset(rows * H_);
    dhpre_.reset(rows * H_);
    dxg_.reset(kind_ == MoeKind::CondMlp ? 0 : rows * C_);
    dgate_.assign(N * K, 0.0f);
}

void MoeMlp::assign_capacity(int N, bool training) {
    const int E = E_, K = K_;
    const std::vector<int>& choice = router_.choice();
    const std::vector<uint8_t>& kept = router_.kept();
    // One budget per expert; first choices claim slots in token order, then second choices
    // (switch and gshard only).
    const float cf = training ? cf_train_ : cf_eval_;
    std::fill(load_.begin(), load_.end(), 0);
    const bool capped = capacity_limits_ && (kind_ == MoeKind::Switch || kind_ == MoeKind::GShard);
    const int per_token = kind_ == MoeKind::GShard ? 2 : 1;
    const int cap = capped ? static_cast<int>(std::ceil(cf * per_token * N / E)) : N * K;
    int64_t dropped = 0;
    for (int j = 0; j < K; ++j) {
        for (int n = 0; n < N; ++n) {
            const int i = n * K + j;
            admitted_[i] = 0;
            if (!kept[i]) continue;
            if (load_[choice[i]] < cap) {
                load_[choice[i]] += 1;
                admitted_[i] = 1;
            } else {
                dropped += 1;
            }
        }
    }
    router_.set_dropped(dropped);
    // Rows of the gathered block, grouped by expert, tokens in order inside each group.
    expert_offset_[0] = 0;
    for (int e = 0; e < E; ++e) expert_offset_[e + 1] = expert_offset_[e] + load_[e];
    std::copy(expert_offset_.begin(), expert_offset_.end() - 1, fill_.begin());
    for (int n = 0; n < N; ++n) {
        for (int j = 0; j < K; ++j) {
            const int i = n * K + j;
            row_of_[i] = -1;
            if (admitted_[i]) {
                const int r = fill_[choice[i]]++;
                row_of_[i] = r;
                row_token_[r] = n;
            }
        }
    }
}

void MoeMlp::experts_forward(float* y, const MoeTensors& p, int N) {
    const int C = C_, H = H_, K = K_, E = E_;
    const int rows = expert_offset_[E];
    const float* gate = router_.gate().data();
    float* xg = xg_.data();
    // x rows were gathered by forward() before this call.
    for (int e = 0; e < E; ++e) {
        const int r0 = expert_offset_[e], n = expert_offset_[e + 1] - r0;
        if (n == 0) continue;
        nn::matmul_forward(hpre_.data() + size_t(r0) * H, xg + size_t(r0) * C,
                           p.fc_w + size_t(e) * H * C, p.fc_b + size_t(e) * H, n, C, H);
    }
    nn::gelu_forward(hact_.data(), hpre_.data(), size_t(rows) * H);
    for (int e = 0; e < E; ++e) {
        const int r0 = expert_offset_[e], n = expert_offset_[e + 1] - r0;
        if (n == 0) continue;
        nn::matmul_forward(out_.data() + size_t(r0) * C, hact_.data() + size_t(r0) * H,
                           p.proj_w + size_t(e) * C * H, p.proj_b + size_t(e) * C, n, H, C);
    }
    // Combine token by token, choices in order: deterministic whatever the threads.
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
        float* yn = y + size_t(n) * C;
        std::fill(yn, yn + C, 0.0f);
        for (int j = 0; j < K; ++j) {
            const int r = row_of_[n * K + j];
            if (r < 0) continue;
            const float g = gate[n * K + j];
            const float* o = out_.data() + size_t(r) * C;
            for (int c = 0; c < C; ++c) yn[c] += g * o[c];
        }
    }
}

void MoeMlp::condmlp_forward(float* y, const float* x, const MoeTensors& p, int N) {
    const int C = C_, H = H_;
    const int* choice = router_.choice().data();
    nn::matmul_forward(hpre_.data(), x, p.fc_w, nullptr, N, C, H);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
        const float* b = p.fc_b + size_t(choice[n]) * H;
        float* row = hpre_.data() + size_t(n) * H;
        for (int i = 0; i < H; ++i) row[i] += b[i];
    }
    nn::gelu_forward(hact_.data(), hpre_.data(), size_t(N) * H);
    nn::matmul_forward(y, hact_.data(), p.proj_w, nullptr, N, H, C);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
        const float* b = p.proj_b + size_t(choice[n]) * C;
        float* row = y + size_t(n) * C;
        for (int c = 0; c < C; ++c) row[c] += b[c];
    }
}

void MoeMlp::forward(float* y, const float* x, const MoeTensors& p, int N, bool training,
                     const float* bias, uint64_t rng_key) {
    check(N >= 1 && N <= max_tokens_, "MoE layer: {} tokens exceed the allocated {}", N,
          max_tokens_);
    check(!router_.frozen() || N == N_, "MoE layer: frozen routing needs the same {} tokens", N_);
    N_ = N;
    const MoeRouterTensors rp{p.router_w, p.noise_w, p.guess_w, p.guess_b};
    router_.forward(x, rp, N, training, bias, rng_key);
    // Frozen routing keeps the capacity decisions too.
    if (!router_.frozen()) assign_capacity(N, training);
    if (kind_ == MoeKind::CondMlp) {
        condmlp_forward(y, x, p, N);
        return;
    }
    const int C = C_;
    const int rows = expert_offset_[E_];
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; ++r) {
        std::memcpy(xg_.data() + size_t(r) * C, x + size_t(row_token_[r]) * C, sizeof(float) * C);
    }
    experts_forward(y, p, N);
}

void MoeMlp::backward(float* dx, const MoeTensors& g, const float* dy, const float* x,
                      const MoeTensors& p, const MoeAuxWeights& w, float aux_scale) {
    const int N = N_, E = E_, K = K_, C = C_, H = H_;
    const int* choice = router_.choice().data();
    const float* gate = router_.gate().data();

    // 1. Gate-weight gradients from the output (admitted choices; condmlp's output does not
    //    depend on its gate), then the router turns them and the auxiliary losses into
    //    gradients of x and the router's weights.
    float* dgate = dgate_.data();
    std::fill(dgate, dgate + size_t(N) * K, 0.0f);
    if (kind_ != MoeKind::CondMlp) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; ++n) {
            for (int j = 0; j < K; ++j) {
                const int r = row_of_[n * K + j];
                if (r < 0) continue;
                const float* o = out_.data() + size_t(r) * C;
                const float* d = dy + size_t(n) * C;
                float* dout = dout_.data() + size_t(r) * C;
                double dot = 0.0;
                const float gw = gate[n * K + j];
                for (int c = 0; c < C; ++c) {
                    dot += static_cast<double>(o[c]) * d[c];
                    dout[c] = gw * d[c];
                }
                dgate[n * K + j] = static_cast<float>(dot);
            }
        }
    }
    const MoeRouterTensors rg{g.router_w, g.noise_w, g.guess_w, g.guess_b};
    const MoeRouterTensors rp{p.router_w, p.noise_w, p.guess_w, p.guess_b};
    router_.backward(dx, rg, dgate, x, rp, w, aux_scale);

    // 2. The experts.
    if (kind_ == MoeKind::CondMlp) {
        // y = c_proj(gelu(c_fc x + b_fc[t])) + b_proj[t].
        nn::grouped_bias_backward(g.proj_b, dy, choice, N, C);
        std::memset(dh_act_.data(), 0, sizeof(float) * N * H);
        nn::matmul_backward(dh_act_.data(), g.proj_w, nullptr, dy, hact_.data(), p.proj_w, N, H, C);
        std::memset(dhpre_.data(), 0, sizeof(float) * N * H);
        nn::gelu_backward(dhpre_.data(), hpre_.data(), dh_act_.data(), size_t(N) * H);
        nn::grouped_bias_backward(g.fc_b, dhpre_.data(), choice, N, H);
        nn::matmul_backward(dx, g.fc_w, nullptr, dhpre_.data(), x, p.fc_w, N, C, H);
        return;
    }
    const int rows = expert_offset_[E];
    std::memset(dh_act_.data(), 0, sizeof(float) * rows * H);
    std::memset(dhpre_.data(), 0, sizeof(float) * rows * H);
    std::memset(dxg_.data(), 0, sizeof(float) * rows * C);
    for (int e = 0; e < E; ++e) {
        const int r0 = expert_offset_[e], n = expert_offset_[e + 1] - r0;
        if (n == 0) continue;
        nn::matmul_backward(dh_act_.data() + size_t(r0) * H, g.proj_w + size_t(e) * C * H,
                            g.proj_b + size_t(e) * C, dout_.data() + size_t(r0) * C,
                            hact_.data() + size_t(r0) * H, p.proj_w + size_t(e) * C * H, n, H, C);
    }
    nn::gelu_backward(dhpre_.data(), hpre_.data(), dh_act_.data(), size_t(rows) * H);
    for (int e = 0; e < E; ++e) {
        const int r0 = expert_offset_[e], n = expert_offset_[e + 1] - r0;
        if (n == 0) continue;
        nn::matmul_backward(dxg_.data() + size_t(r0) * C, g.fc_w + size_t(e) * H * C,
                            g.fc_b + size_t(e) * H, dhpre_.data() + size_t(r0) * H,
                            xg_.data() + size_t(r0) * C, p.fc_w + size_t(e) * H * C, n, C, H);
    }
    // Scatter back token by token, choices in order.
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
        float* d = dx + size_t(n) * C;
        for (int j = 0; j < K; ++j) {
            const int r = row_of_[n * K + j];
            if (r < 0) continue;
            const float* src = dxg_.data() + size_t(r) * C;
            for (int c = 0; c < C; ++c) d[c] += src[c];
        }
    }
}

}  // namespace greenmoe

// GptInference: the GPT forward pass over new positions only, with a per-layer key/value cache.
#include "greenmoe/model/gpt_inference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/nn/gelu.h"
#include "greenmoe/nn/layernorm.h"
#include "greenmoe/nn/matmul.h"
#include "greenmoe/nn/parallel.h"
#include "greenmoe/nn/residual.h"

namespace greenmoe {

namespace {

// z[hs] = softmax(scale · q·k_s for s ≤ pos) · v: one query head against one sequence's cache.
// keys point at head h of position 0; consecutive positions are `ld` floats apart; values
// sit `C` floats after their keys. scores is scratch of pos + 1 floats.
void attend_head(float* z, const float* q, const float* keys, ptrdiff_t ld, int C, int hs, int pos,
                 float scale, float* scores) {
    float max_score = -INFINITY;
    for (int s = 0; s <= pos; ++s) {
        const float* k = keys + s * ld;
        float dot = 0.0f;
        for (int i = 0; i < hs; ++i) dot += q[i] * k[i];
        scores[s] = dot * scale;
        max_score = std::max(max_score, scores[s]);
    }
    double sum = 0.0;
    for (int s = 0; s <= pos; ++s) {
        scores[s] = std::exp(scores[s] - max_score);
        sum += scores[s];
    }
    const float inv = static_cast<float>(1.0 / sum);
    std::fill(z, z + hs, 0.0f);
    for (int s = 0; s <= pos; ++s) {
        const float a = scores[s] * inv;
        const float* v = keys + s * ld + C;
        for (int i = 0; i < hs; ++i) z[i] += a * v[i];
    }
}

}  // namespace

GptInference::GptInference(const GptModel& model, int max_batch, int max_len, int max_tokens)
    : model_(model),
      config_(model.config()),
      max_batch_(max_batch),
      max_len_(max_len),
      max_tokens_(max_tokens),
      C_(config_.n_embd),
      NH_(config_.n_head),
      hs_(config_.n_embd / config_.n_head) {
    check(max_batch >= 1 && max_tokens >= 1 && max_len >= 1 && max_len <= config_.block_size,
          "inference: need 1 ≤ max_len ≤ block_size ({}), batch and tokens ≥ 1; got {}, {}, {}",
          config_.block_size, max_len, max_batch, max_tokens);
    const size_t N = size_t(max_tokens), C = C_;
    row_slot_.resize(N);
    row_pos_.resize(N);
    kv_cache_.resize(config_.n_layer);
    for (auto& cache : kv_cache_) cache.reset(size_t(max_batch) * max_len * 2 * C);
    residual_.reset(N * C);
    ln_.reset(N * C);
    mean_.reset(N);
    rstd_.reset(N);
    qkv_.reset(N * 3 * C);
    // Heads of every query row: one per token, top_k per token in MoA layers.
    atty_.reset(N * C * size_t(config_.attn == "moa" ? std::max(1, config_.top_k) : 1));
    sub_out_.reset(N * C);
    fch_.reset(N * 4 * C * 2);  // dense blocks (also every block but each moe_every-th)
    last_.reset(size_t(max_batch) * C);
    logits_.reset(N * config_.padded_vocab_size);
    moe_of_layer_.assign(size_t(config_.n_layer), nullptr);
    std::vector<int> moe_experts;  // the count of each moe_ entry
    for (int l = 0; l < config_.n_layer; ++l) {
        const int E = config_.mlp_experts(l);
        if (E == 0) continue;
        const auto it = std::find(moe_experts.begin(), moe_experts.end(), E);
        if (it != moe_experts.end()) {
            moe_of_layer_[size_t(l)] = moe_[size_t(it - moe_experts.begin())].get();
            continue;
        }
        GptConfig block_config = config_;
        block_config.n_experts = E;
        moe_.push_back(std::make_unique<MoeMlp>(block_config, static_cast<int>(N)));
        moe_.back()->set_capacity_limits(false);
        moe_experts.push_back(E);
        moe_of_layer_[size_t(l)] = moe_.back().get();
    }
    if (config_.attn == "moa") {
        const int K = config_.top_k;
        router_ = std::make_unique<MoeRouter>(MoeKind::Olnn, config_.n_embd, config_.n_experts, K,
                                              static_cast<int>(N), false);
        moa_q_.reset(N * K * C * 2);
        moa_out_.reset(N * K * C * 2);
    }
}

GptInference::~GptInference() = default;

double GptInference::memory_bytes(const GptConfig& config, int max_batch, int max_len,
                                  int max_tokens) {
    const double C = config.n_embd, N = max_tokens, k = std::max(1, config.top_k);
    const double cache = double(config.n_layer) * max_batch * max_len * 2 * C;
    // residual, ln, qkv, heads, sub_out, fch and logits per new token, as allocated above;
    // routed MLPs hold each token's chosen experts' hidden activations.
    double per_token = C * (1 + 1 + 3 + k + 1 + 8) + config.padded_vocab_size;
    if (config.mlp != "dense") per_token += k * config.hidden() * 2 + C * k;
    if (config.attn == "moa") per_token += 4 * k * C;
    return 4.0 * (cache + N * per_token + double(max_batch) * C);
}

void GptInference::copy_prefix(int src, int dst, int len) {
    check(
        src >= 0 && src < max_batch_ && dst >= 0 && dst < max_batch_ && len >= 0 && len <= max_len_,
        "inference: copy_prefix({}, {}, {}) outside the cache of {} × {}", src, dst, len,
        max_batch_, max_len_);
    if (src == dst) return;
    const size_t row = 2 * size_t(C_), per_seq = size_t(max_len_) * row;
    for (auto& cache : kv_cache_) {
        std::memcpy(cache.data() + dst * per_seq, cache.data() + src * per_seq,
                    sizeof(float) * row * len);
    }
}

void GptInference::store_kv(int layer, const float* kv, int stride, int N) {
    const size_t row = 2 * size_t(C_);
    float* cache = kv_cache_[static_cast<size_t>(layer)].data();
    for (int n = 0; n < N; ++n) {
        std::memcpy(cache + (size_t(row_slot_[n]) * max_len_ + row_pos_[n]) * row,
                    kv + size_t(n) * stride, sizeof(float) * row);
    }
}

void GptInference::attention(int layer, const float* q, int q_stride, int N, int choices) {
    const int C = C_, hs = hs_, NH = NH_;
    const ptrdiff_t ld = 2 * ptrdiff_t(C);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    const float* cache = kv_cache_[static_cast<size_t>(layer)].data();
    const int units = N * choices * NH;
    const size_t work = size_t(units) * (size_t(row_pos_[N - 1]) + 1) * hs;
#pragma omp parallel if (units > 1 && work >= nn::kParallelMinFlops)
    {
        std::vector<float> scores(static_cast<size_t>(max_len_));
#pragma omp for schedule(static)
        for (int u = 0; u < units; ++u) {
            const int h = u % NH, row = u / NH, n = row / choices;
            const float* keys = cache + size_t(row_slot_[n]) * max_len_ * ld + size_t(h) * hs;
            attend_head(atty_.data() + size_t(row) * C + size_t(h) * hs,
                        q + size_t(row) * q_stride + size_t(h) * hs, keys, ld, C, hs, row_pos_[n],
                        scale, scores.data());
        }
    }
}

// Mixture of attention heads (docs/moe.md "moa") on new positions: shared keys and values
// go to the cache; each token's k chosen experts get their own queries and output maps.
void GptInference::moa_attention(int layer, float* y, const float* x, int N) {
    const int C = C_, K = config_.top_k, E = config_.n_experts;
    const MoaTensors& p = model_.tensors().blocks[layer].moa;
    router_->forward(x, MoeRouterTensors{p.router_w, p.noise_w, nullptr, nullptr}, N, false,
                     model_.moe_bias_row(layer, true), rng_key(0, static_cast<uint64_t>(layer), 1));
    // Keys and values of the new tokens, into the cache.
    nn::matmul_forward(qkv_.data(), x, p.kv_w, p.kv_b, N, C, 2 * C);
    store_kv(layer, qkv_.data(), 2 * C, N);
    // Rows (n, j) grouped by expert, so each expert's query and output maps are one sgemm.
    const std::vector<int>& choice = router_->choice();
    std::vector<int> order(size_t(N) * K);
    std::vector<int> offset(size_t(E) + 1, 0);
    for (int r = 0; r < N * K; ++r) offset[size_t(choice[r]) + 1] += 1;
    for (int e = 0; e < E; ++e) offset[size_t(e) + 1] += offset[size_t(e)];
    std::vector<int> fill(offset.begin(), offset.end() - 1);
    for (int r = 0; r < N * K; ++r) order[size_t(fill[size_t(choice[r])]++)] = r;
    float* xg = moa_q_.data();                     // gathered inputs [N·K, C]
    float* q = moa_q_.data() + size_t(N) * K * C;  // queries in (n, j) order [N·K, C]
    float* out = moa_out_.data();                  // gathered outputs [N·K, C]
    float* qg = moa_out_.data() + size_t(N) * K * C;
    for (int i = 0; i < N * K; ++i) {
        std::memcpy(xg + size_t(i) * C, x + size_t(order[size_t(i)] / K) * C, sizeof(float) * C);
    }
    for (int e = 0; e < E; ++e) {
        const int r0 = offset[size_t(e)], n = offset[size_t(e) + 1] - r0;
        if (n == 0) continue;
        nn::matmul_forward(qg + size_t(r0) * C, xg + size_t(r0) * C, p.q_w + size_t(e) * C * C,
                           p.q_b + size_t(e) * C, n, C, C);
    }
    for (int i = 0; i < N * K; ++i) {
        std::memcpy(q + size_t(order[size_t(i)]) * C, qg + size_t(i) * C, sizeof(float) * C);
    }
    attention(layer, q, C, N, K);  // heads of row (n, j) into atty_
    for (int i = 0; i < N * K; ++i) {
        std::memcpy(xg + size_t(i) * C, atty_.data() + size_t(order[size_t(i)]) * C,
                    sizeof(float) * C);
    }
    for (int e = 0; e < E; ++e) {
        const int r0 = offset[size_t(e)], n = offset[size_t(e) + 1] - r0;
        if (n == 0) continue;
        nn::matmul_forward(out + size_t(r0) * C, xg + size_t(r0) * C, p.o_w + size_t(e) * C * C,
                           p.o_b + size_t(e) * C, n, C, C);
    }
    // Combine token by token, choices in order, as the training forward does.
    std::vector<int> slot_of(size_t(N) * K);
    for (int i = 0; i < N * K; ++i) slot_of[size_t(order[size_t(i)])] = i;
    const float* gate = router_->gate().data();
    for (int n = 0; n < N; ++n) {
        float* yn = y + size_t(n) * C;
        std::fill(yn, yn + C, 0.0f);
        for (int j = 0; j < K; ++j) {
            const float g = gate[n * K + j];
            const float* o = out + size_t(slot_of[size_t(n) * K + j]) * C;
            for (int c = 0; c < C; ++c) yn[c] += g * o[c];
        }
    }
}

const float* GptInference::forward(const int* tokens, const int* slot, const int* start,
                                   const int* count, int B, Logits logits) {
    check(B >= 1 && B <= max_batch_, "inference: {} sequences exceed the allocated {}", B,
          max_batch_);
    const int C = C_, V = config_.vocab_size, Vp = config_.padded_vocab_size;
    std::vector<uint8_t> used(static_cast<size_t>(max_batch_), 0);
    int N = 0;
    for (int i = 0; i < B; ++i) {
        check(slot[i] >= 0 && slot[i] < max_batch_ && !used[size_t(slot[i])],
              "inference: sequence {} names slot {} (slots 0..{} each at most once)", i, slot[i],
              max_batch_ - 1);
        used[size_t(slot[i])] = 1;
        check(count[i] >= 1 && start[i] >= 0 && start[i] + count[i] <= max_len_,
              "inference: positions {}..{} of sequence {} outside the cache length {}", start[i],
              start[i] + count[i] - 1, i, max_len_);
        check(N + count[i] <= max_tokens_, "inference: more than the allocated {} tokens",
              max_tokens_);
        for (int t = 0; t < count[i]; ++t, ++N) {
            row_slot_[size_t(N)] = slot[i];
            row_pos_[size_t(N)] = start[i] + t;
        }
    }
    const GptTensors& p = model_.tensors();

    // Token and position embeddings.
    float* x = residual_.data();
    for (int n = 0; n < N; ++n) {
        const int tok = tokens[n], pos = row_pos_[size_t(n)];
        check(tok >= 0 && tok < V, "inference: token {} outside the vocabulary [0, {})", tok, V);
        const float* te = p.wte + size_t(tok) * C;
        const float* pe = p.wpe + size_t(pos) * C;
        float* out = x + size_t(n) * C;
        for (int c = 0; c < C; ++c) out[c] = te[c] + pe[c];
    }

    for (int l = 0; l < config_.n_layer; ++l) {
        const BlockTensors& w = p.blocks[static_cast<size_t>(l)];
        nn::layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), x, w.ln1_w, w.ln1_b, N, C);
        if (w.moa.kv_w != nullptr) {
            moa_attention(l, sub_out_.data(), ln_.data(), N);
        } else {
            nn::matmul_forward(qkv_.data(), ln_.data(), w.qkv_w, w.qkv_b, N, C, 3 * C);
            store_kv(l, qkv_.data() + C, 3 * C, N);
            attention(l, qkv_.data(), 3 * C, N, 1);
            nn::matmul_forward(sub_out_.data(), atty_.data(), w.attn_proj_w, w.attn_proj_b, N, C,
                               C);
        }
        nn::residual_forward(x, sub_out_.data(), x, size_t(N) * C);
        nn::layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), x, w.ln2_w, w.ln2_b, N, C);
        if (w.fc_w == nullptr) {  // a routed MLP
            moe_of_layer_[size_t(l)]->forward(sub_out_.data(), ln_.data(), w.moe, N, false,
                                              model_.moe_bias_row(l, false),
                                              rng_key(0, static_cast<uint64_t>(l)));
            if (moe_observer_) moe_observer_(l, *moe_of_layer_[size_t(l)], ln_.data(), N);
        } else {
            float* pre = fch_.data();
            float* act = fch_.data() + size_t(N) * 4 * C;
            nn::matmul_forward(pre, ln_.data(), w.fc_w, w.fc_b, N, C, 4 * C);
            nn::gelu_forward(act, pre, size_t(N) * 4 * C);
            nn::matmul_forward(sub_out_.data(), act, w.fc_proj_w, w.fc_proj_b, N, 4 * C, C);
        }
        nn::residual_forward(x, sub_out_.data(), x, size_t(N) * C);
    }

    if (logits == Logits::None) return nullptr;
    const float* final_rows = x;
    int rows = N;
    if (logits == Logits::Last) {
        int end = 0;
        for (int b = 0; b < B; ++b) {
            end += count[b];
            std::memcpy(last_.data() + size_t(b) * C, x + size_t(end - 1) * C, sizeof(float) * C);
        }
        final_rows = last_.data();
        rows = B;
    }
    nn::layernorm_forward(ln_.data(), mean_.data(), rstd_.data(), final_rows, p.lnf_w, p.lnf_b,
                          rows, C);
    nn::matmul_forward(logits_.data(), ln_.data(), p.wte, nullptr, rows, C, Vp);
    return logits_.data();
}

}  // namespace greenmoe

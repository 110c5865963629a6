// The sparse MLP of a Hugging Face MoE layer (see moe_block.h).
#include "greenmoe/hf/moe_block.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "greenmoe/hf/ops.h"

namespace greenmoe::hf {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Indices of the k largest values, largest first; ties go to the lower index.
std::vector<int> top_indices(const std::vector<float>& v, int k) {
    std::vector<int> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int a, int b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
    idx.resize(static_cast<size_t>(k));
    return idx;
}

// Keeps the topk_group best groups of choice scores; the others become `fill`.
void limit_groups(const MoeConfig& c, std::vector<float>& choice, bool sum_top2, float fill) {
    const int e = static_cast<int>(choice.size()), per = e / c.n_group;
    std::vector<float> group(static_cast<size_t>(c.n_group));
    for (int g = 0; g < c.n_group; ++g) {
        std::vector<float> part(choice.begin() + g * per, choice.begin() + (g + 1) * per);
        if (sum_top2) {
            const auto best = top_indices(part, std::min(2, per));
            float s = 0.0f;
            for (int i : best) s += part[static_cast<size_t>(i)];
            group[static_cast<size_t>(g)] = s;
        } else {
            group[static_cast<size_t>(g)] = *std::max_element(part.begin(), part.end());
        }
    }
    const auto keep = top_indices(group, c.topk_group);
    for (int g = 0; g < c.n_group; ++g) {
        if (std::find(keep.begin(), keep.end(), g) != keep.end()) continue;
        std::fill(choice.begin() + g * per, choice.begin() + (g + 1) * per, fill);
    }
}

// out += the shared expert's output (times its sigmoid gate where the model has one).
void add_shared_expert(const MoeWeights& w, const float* x, int64_t n, int64_t hidden, float* out) {
    std::vector<float> shared(static_cast<size_t>(n * hidden));
    gated_mlp(w.shared, x, n, shared.data());
    std::vector<float> gate(static_cast<size_t>(n), 1.0f);
    if (!w.shared_gate.empty()) {
        linear(x, n, w.shared_gate, gate.data());
        for (float& g : gate) g = 1.0f / (1.0f + std::exp(-g));
    }
    for (int64_t t = 0; t < n; ++t) {
        for (int64_t d = 0; d < hidden; ++d)
            out[t * hidden + d] +=
                gate[static_cast<size_t>(t)] * shared[static_cast<size_t>(t * hidden + d)];
    }
}

}  // namespace

Routing route(const MoeConfig& c, const MoeWeights& w, const float* logits, int64_t n,
              int n_experts, const std::vector<bool>& masked) {
    Routing r;
    r.tokens = n;
    r.top_k = c.top_k;
    r.experts.resize(static_cast<size_t>(n * c.top_k));
    r.weights.resize(r.experts.size());
    std::vector<float> scores(static_cast<size_t>(n_experts));
    for (int64_t t = 0; t < n; ++t) {
        std::copy_n(logits + t * n_experts, n_experts, scores.begin());
        for (int e = 0; e < n_experts; ++e) {
            if (!masked.empty() && masked[static_cast<size_t>(e)])
                scores[static_cast<size_t>(e)] = kNegInf;
        }
        if (c.scoring == Scoring::Softmax) {
            softmax(scores.data(), n_experts);
        } else {
            for (float& s : scores) s = 1.0f / (1.0f + std::exp(-s));
        }
        std::vector<float> choice = scores;
        if (c.method == TopkMethod::NoauxTc) {
            for (int e = 0; e < n_experts; ++e) {
                choice[static_cast<size_t>(e)] += w.correction_bias[static_cast<size_t>(e)];
                if (!masked.empty() && masked[static_cast<size_t>(e)])
                    choice[static_cast<size_t>(e)] = kNegInf;
            }
            limit_groups(c, choice, true, kNegInf);
        } else if (c.method == TopkMethod::GroupLimitedGreedy) {
            limit_groups(c, choice, false, 0.0f);
        }
        const auto chosen = top_indices(choice, c.top_k);
        double sum = 0.0;
        for (int k = 0; k < c.top_k; ++k)
            sum += scores[static_cast<size_t>(chosen[static_cast<size_t>(k)])];
        for (int k = 0; k < c.top_k; ++k) {
            const size_t at = static_cast<size_t>(t * c.top_k + k);
            const int e = chosen[static_cast<size_t>(k)];
            double weight = scores[static_cast<size_t>(e)];
            if (c.normalize) weight /= sum + 1e-20;
            r.experts[at] = e;
            r.weights[at] = static_cast<float>(weight * c.scale);
        }
    }
    return r;
}

void moe_block(const ModelConfig& c, const MoeWeights& w, const float* x, int64_t n, float* out,
               const std::vector<bool>& masked, MoeObserver* observer, int layer) {
    const int64_t hidden = c.hidden_size;
    const int n_experts = static_cast<int>(w.experts.size());
    std::vector<float> logits(static_cast<size_t>(n * n_experts));
    linear(x, n, w.router, logits.data());
    const Routing r = route(c.moe, w, logits.data(), n, n_experts, masked);

    // Tokens grouped by expert: one product per expert over the rows routed to it. Experts
    // run on separate threads (their products then single-threaded) when there is enough work;
    // each writes its rows' results to their own slots, summed per token in slot order after.
    std::vector<std::vector<int64_t>> rows(static_cast<size_t>(n_experts));
    for (size_t i = 0; i < r.experts.size(); ++i) {
        rows[static_cast<size_t>(r.experts[i])].push_back(static_cast<int64_t>(i));
    }
    std::vector<float> slots(r.experts.size() * static_cast<size_t>(hidden));
    const size_t work = r.experts.size() * static_cast<size_t>(hidden * c.moe.expert_intermediate);
#pragma omp parallel for schedule(dynamic) if (n_experts > 1 && work >= (size_t{1} << 20))
    for (int e = 0; e < n_experts; ++e) {
        const auto& list = rows[static_cast<size_t>(e)];
        if (list.empty()) continue;
        const auto m = static_cast<int64_t>(list.size());
        std::vector<float> in(static_cast<size_t>(m * hidden)), result(in.size());
        for (int64_t j = 0; j < m; ++j) {
            const int64_t token = list[static_cast<size_t>(j)] / r.top_k;
            std::copy_n(x + token * hidden, hidden, in.data() + j * hidden);
        }
        gated_mlp(w.experts[static_cast<size_t>(e)], in.data(), m, result.data());
        for (int64_t j = 0; j < m; ++j) {
            std::copy_n(result.data() + j * hidden, hidden,
                        slots.data() + list[static_cast<size_t>(j)] * hidden);
        }
    }
    for (int64_t t = 0; t < n; ++t) {
        float* o = out + t * hidden;
        std::fill(o, o + hidden, 0.0f);
        for (int k = 0; k < r.top_k; ++k) {
            const int64_t slot = t * r.top_k + k;
            const float weight = r.weights[static_cast<size_t>(slot)];
            const float* y = slots.data() + slot * hidden;
            for (int64_t d = 0; d < hidden; ++d) o[d] += weight * y[d];
        }
    }
    if (!w.shared.gate.empty()) add_shared_expert(w, x, n, hidden, out);
    if (observer == nullptr) return;
    MoeLayerTrace trace;
    trace.layer = layer;
    trace.tokens = n;
    trace.hidden = hidden;
    trace.n_experts = n_experts;
    trace.x = x;
    trace.logits = logits.data();
    trace.routing = &r;
    trace.expert_out = slots.data();
    trace.out = out;
    trace.run_expert = [&w](int e, const float* in, int64_t m, float* result) {
        gated_mlp(w.experts[static_cast<size_t>(e)], in, m, result);
    };
    observer->observe(trace);
}

}  // namespace greenmoe::hf

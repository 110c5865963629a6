// The calibration pass on greenmoe checkpoints, through GptInference (see calibration.h).
#include <algorithm>
#include <cmath>
#include <memory>

#include "greenmoe/core/error.h"
#include "greenmoe/model/gpt_inference.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/moeits/calibration.h"

namespace greenmoe::moeits {

namespace {

constexpr int kBatchSequences = 8;

LayerCalibration& layer_for(std::vector<LayerCalibration>& layers, int block, int experts,
                            int top_k) {
    for (auto& l : layers) {
        if (l.layer == block) return l;
    }
    LayerCalibration l;
    l.layer = block;
    l.n_experts = experts;
    l.top_k = top_k;
    l.count.assign(static_cast<size_t>(experts), 0);
    l.gate_sum.assign(static_cast<size_t>(experts), 0.0);
    l.norm_sum.assign(static_cast<size_t>(experts), 0.0);
    l.gated_norm_sum.assign(static_cast<size_t>(experts), 0.0);
    layers.push_back(std::move(l));
    return layers.back();
}

// One routed MLP's last forward summed into its layer's statistics.
void add_forward(LayerCalibration& s, const MoeMlp& moe, int N, int C) {
    const int K = moe.choices_per_token();
    const std::vector<int>& choice = moe.choice();
    if (!moe.has_expert_rows()) {
        s.has_outputs = false;
        for (int i = 0; i < N * K; ++i) s.count[static_cast<size_t>(choice[size_t(i)])] += 1;
        return;
    }
    const std::vector<int>& row = moe.row_of();
    const std::vector<float>& gate = moe.gates();
    for (int n = 0; n < N; ++n) {
        double sum = 0.0;
        for (int j = 0; j < K; ++j) {
            if (row[size_t(n * K + j)] >= 0) sum += gate[size_t(n * K + j)];
        }
        for (int j = 0; j < K; ++j) {
            const auto i = static_cast<size_t>(n * K + j);
            if (row[i] < 0) continue;  // a choice that reached no expert
            const float* y = moe.expert_rows() + static_cast<size_t>(row[i]) * size_t(C);
            double sq = 0.0;
            for (int c = 0; c < C; ++c) sq += double(y[c]) * double(y[c]);
            const double norm = std::sqrt(sq);
            // Renormalised over the choices that reached an expert; 0 when they weigh 0.
            const double g = sum > 0.0 ? gate[i] / sum : 0.0;
            const auto e = static_cast<size_t>(choice[i]);
            s.count[e] += 1;
            s.gate_sum[e] += g;
            s.norm_sum[e] += norm;
            s.gated_norm_sum[e] += g * norm;
        }
    }
}

}  // namespace

Calibration calibrate_greenmoe(const std::filesystem::path& path,
                               const CalibrationOptions& options) {
    usage_check(!options.naee,
                "{}: NAEE's reconstruction statistics are collected on Hugging Face models only",
                path.string());
    const std::unique_ptr<GptModel> model = load_model(path, 1, 1);
    const GptConfig& config = model->config();
    Calibration result;
    const std::vector<int32_t> ids =
        read_calibration_tokens(options.data, options.tokens, config.vocab_size, &result.files);
    int T = options.sequence_length > 0 ? options.sequence_length : 256;
    T = std::min(T, config.block_size);
    result.sequence_length = T;
    result.tokens = static_cast<int64_t>(ids.size());

    GptInference inference(*model, kBatchSequences, T, kBatchSequences * T);
    inference.set_moe_observer([&](int layer, const MoeMlp& moe, const float*, int N) {
        LayerCalibration& s =
            layer_for(result.layers, layer, moe.experts(), moe.choices_per_token());
        add_forward(s, moe, N, config.n_embd);
    });
    // Sequences of T tokens in shard order (the remainder one shorter), each in its own cache
    // slot from position 0, kBatchSequences per forward.
    std::vector<int> tokens, slot, start, count;
    for (size_t at = 0; at < ids.size();) {
        tokens.clear();
        slot.clear();
        start.clear();
        count.clear();
        while (at < ids.size() && static_cast<int>(slot.size()) < kBatchSequences) {
            const size_t n = std::min(ids.size() - at, static_cast<size_t>(T));
            slot.push_back(static_cast<int>(slot.size()));
            start.push_back(0);
            count.push_back(static_cast<int>(n));
            tokens.insert(tokens.end(), ids.begin() + long(at), ids.begin() + long(at + n));
            at += n;
            ++result.sequences;
        }
        inference.forward(tokens.data(), slot.data(), start.data(), count.data(),
                          static_cast<int>(slot.size()), GptInference::Logits::None);
    }
    check(!result.layers.empty(), "{}: the model has no routed MoE layer to calibrate",
          path.string());
    std::sort(
        result.layers.begin(), result.layers.end(),
        [](const LayerCalibration& a, const LayerCalibration& b) { return a.layer < b.layer; });
    return result;
}

}  // namespace greenmoe::moeits

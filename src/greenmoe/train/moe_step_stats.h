// Routing statistics of one optimizer step (per MoE layer, summed over micro-batches)
// as they go to log.jsonl and the console line.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "greenmoe/model/gpt.h"

namespace greenmoe {

struct MoeStepStats {
    std::vector<MoeForwardStats> layers;
    int micro = 0;

    void reset(GptModel& model) {
        layers.assign(model.num_moe_layers(), {});
        for (int i = 0; i < model.num_moe_layers(); ++i) {
            layers[size_t(i)].counts.assign(size_t(model.moe_experts(i)), 0);
        }
        micro = 0;
    }
    void add(GptModel& model) {
        for (int i = 0; i < model.num_moe_layers(); ++i) {
            const MoeForwardStats& s = model.moe_stats(i);
            MoeForwardStats& t = layers[i];
            t.aux_load += s.aux_load;
            t.aux_importance += s.aux_importance;
            t.aux_z += s.aux_z;
            t.aux_penalty += s.aux_penalty;
            t.entropy += s.entropy;
            t.choices += s.choices;
            t.dropped += s.dropped;
            for (size_t e = 0; e < s.counts.size(); ++e) t.counts[e] += s.counts[e];
        }
        ++micro;
    }
    static std::vector<double> fractions(const MoeForwardStats& s) {
        double total = 0;
        for (auto c : s.counts) total += static_cast<double>(c);
        std::vector<double> f;
        for (auto c : s.counts) f.push_back(total > 0 ? c / total : 0.0);
        return f;
    }
    static double cv(const MoeForwardStats& s) {
        const double E = static_cast<double>(s.counts.size());
        double mean = 0, var = 0;
        for (auto c : s.counts) mean += static_cast<double>(c) / E;
        for (auto c : s.counts) var += (c - mean) * (c - mean) / E;
        return mean > 0 ? std::sqrt(var) / mean : 0.0;
    }
    nlohmann::json to_json(GptModel& model) const {
        nlohmann::json out = nlohmann::json::array();
        const double m = micro > 0 ? micro : 1;
        for (size_t i = 0; i < layers.size(); ++i) {
            const MoeForwardStats& s = layers[i];
            const float* bias = model.moe_slot_bias(static_cast<int>(i));
            const int experts = model.moe_experts(static_cast<int>(i));
            out.push_back({{"layer", model.moe_block(static_cast<int>(i))},
                           {"kind", model.moe_is_attention(static_cast<int>(i)) ? "attn" : "mlp"},
                           {"load", fractions(s)},
                           {"dropped", s.choices > 0 ? double(s.dropped) / s.choices : 0.0},
                           {"load_cv", cv(s)},
                           {"entropy", s.entropy / m},
                           {"aux_load", s.aux_load / m},
                           {"aux_importance", s.aux_importance / m},
                           {"aux_z", s.aux_z / m},
                           {"aux_penalty", s.aux_penalty / m},
                           {"bias", std::vector<float>(bias, bias + experts)}});
        }
        return out;
    }
    // Console: the auxiliary loss, mean load CV and dropped share over layers.
    std::string summary(double aux) const {
        double cv_sum = 0, dropped = 0, choices = 0;
        for (const auto& s : layers) {
            cv_sum += cv(s);
            dropped += static_cast<double>(s.dropped);
            choices += static_cast<double>(s.choices);
        }
        return fmt::format(" | aux {:.4f} | load cv {:.2f} | dropped {:.1f}%", aux,
                           layers.empty() ? 0.0 : cv_sum / layers.size(),
                           choices > 0 ? 100.0 * dropped / choices : 0.0);
    }
};

}  // namespace greenmoe

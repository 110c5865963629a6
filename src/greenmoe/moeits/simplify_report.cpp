// What `simplify` says: summary.json and the lines it prints (see simplify_report.h).
#include "greenmoe/moeits/simplify_report.h"

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace greenmoe::moeits {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

std::string join(const std::vector<int>& v) {
    std::string s;
    for (const int x : v) {
        s += s.empty() ? "" : ",";
        s += std::to_string(x);
    }
    return s;
}

Json layer_summary(const LayerOutcome& o) {
    Json row = {{"layer", o.layer},
                {"n_experts", o.n_experts},
                {"top_k", o.top_k},
                {"kept", o.kept},
                {"n_kept", o.kept.size()},
                {"stopped_at_min_keep", o.stopped_at_min_keep},
                {"nmi_cached", o.nmi_cached},
                {"expert_params_before", o.expert_params_before},
                {"expert_params_after", o.expert_params_after}};
    row["threshold"] = std::isnan(o.threshold) ? Json(nullptr) : Json(o.threshold);
    row["factor"] = std::isnan(o.threshold) ? Json(nullptr) : Json(o.factor);
    if (!o.scores.empty()) row["scores"] = o.scores;
    if (!o.detail.is_null()) row[criterion_name(o.criterion)] = o.detail;
    return row;
}

}  // namespace

double percent(int64_t part, int64_t whole) {
    return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

void emit(const SimplifyOptions& options, const std::string& line) {
    if (options.log) {
        options.log(line);
        return;
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

// summary.json without the files and timings, which add_files fills in at the end.
Json simplify_summary(const SimplifyOptions& options, const MoeModel& model,
                      const SimplifyResult& result, const fs::path& cache_dir, bool need_nmi) {
    const auto& layers = model.layers();
    Json summary;
    summary[kSimplifySummaryMarker] = 1;
    summary["model"] = options.model.string();
    // Where the model came from, so that `eval` can find its run's validation data.
    summary["model_absolute"] = fs::absolute(options.model).lexically_normal().string();
    summary["architecture"] = model.architecture();
    summary["criterion"] = criterion_name(options.criterion);
    summary["mode"] = options.factor ? "factor" : options.keep ? "keep" : "reduce";
    if (result.factor) summary["factor"] = *result.factor;
    if (options.keep) summary["keep"] = *options.keep;
    if (options.reduce_percent) summary["reduce_percent"] = *options.reduce_percent;
    if (options.criterion == Criterion::Random) summary["seed"] = options.seed;
    summary["calibration"] = result.calibration;
    summary["kinds"] = layers.front().kind_names;
    summary["kind_weights"] = layers.front().kind_weights;
    summary["nmi_cache"] = need_nmi ? Json{{"dir", fs::absolute(cache_dir).string()},
                                           {"layers_computed", result.nmi_layers_computed},
                                           {"layers_reused", result.nmi_layers_reused}}
                                    : Json(nullptr);
    Json layer_rows = Json::array();
    for (const auto& o : result.layers) layer_rows.push_back(layer_summary(o));
    summary["layers"] = layer_rows;
    Json skipped = Json::array();
    for (const auto& s : result.skipped)
        skipped.push_back({{"layer", s.layer}, {"reason", s.reason}});
    summary["skipped_layers"] = skipped;
    summary["parameters"] = {
        {"total_before", result.params_before},
        {"total_after", result.params_after},
        {"total_reduction_percent",
         percent(result.params_before - result.params_after, result.params_before)},
        {"expert_before", result.expert_params_before},
        {"expert_after", result.expert_params_after},
        {"expert_reduction_percent",
         percent(result.expert_params_before - result.expert_params_after,
                 result.expert_params_before)}};
    return summary;
}

void log_outcome(const SimplifyOptions& options, const SimplifyResult& result, size_t files) {
    emit(options, fmt::format("{:>6} {:>8} {:>6} {:>6}  {}", "layer", "experts", "kept", "top-k",
                              "kept experts (original numbers)"));
    std::string stopped;
    for (const auto& o : result.layers) {
        // NAEE says which search chose the layer's set (exhaustive or greedy) and its error.
        std::string search;
        if (o.detail.is_object() && o.detail.contains("search")) {
            search = fmt::format("  (naee {} search, reconstruction error {:.6g})",
                                 o.detail.at("search").get<std::string>(),
                                 o.detail.at("reconstruction_error").get<double>());
        }
        emit(options, fmt::format("{:>6} {:>8} {:>6} {:>6}  {}{}{}", o.layer, o.n_experts,
                                  o.kept.size(), o.top_k, join(o.kept),
                                  o.stopped_at_min_keep ? "  (stopped at top-k)" : "", search));
        if (!o.stopped_at_min_keep) continue;
        stopped += stopped.empty() ? "" : ", ";
        stopped += std::to_string(o.layer);
    }
    if (!stopped.empty()) {
        emit(options,
             fmt::format("{} {} stopped pruning at top-k experts",
                         stopped.find(',') == std::string::npos ? "layer" : "layers", stopped));
    }
    emit(options,
         fmt::format("expert parameters: {} -> {} (-{:.1f}%); all parameters: {} -> {} (-{:.1f}%)",
                     result.expert_params_before, result.expert_params_after,
                     percent(result.expert_params_before - result.expert_params_after,
                             result.expert_params_before),
                     result.params_before, result.params_after,
                     percent(result.params_before - result.params_after, result.params_before)));
    emit(options,
         fmt::format("wrote {} ({} file{})", options.out.string(), files, files == 1 ? "" : "s"));
}

void log_model(const SimplifyOptions& options, const MoeModel& model) {
    const auto& layers = model.layers();
    int fewest = layers.front().n_experts, most = fewest;
    for (const auto& l : layers) {
        fewest = std::min(fewest, l.n_experts);
        most = std::max(most, l.n_experts);
    }
    emit(options,
         fmt::format("{}: {} model, {} MoE layers of {} experts (top-{}), criterion {}",
                     options.model.string(), model.architecture(), layers.size(),
                     fewest == most ? std::to_string(most) : fmt::format("{}-{}", fewest, most),
                     layers.front().top_k, criterion_name(options.criterion)));
    for (const auto& s : model.skipped()) {
        emit(options, fmt::format("  layer {} skipped: {}", s.layer, s.reason));
    }
}

}  // namespace greenmoe::moeits

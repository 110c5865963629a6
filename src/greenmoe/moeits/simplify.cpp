// The expert-pruning pipeline (see simplify.h): check, read what the criterion needs,
// choose the experts, write.
#include "greenmoe/moeits/simplify.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/moeits/expert_choice.h"
#include "greenmoe/moeits/prune_rule.h"
#include "greenmoe/moeits/simplify_report.h"

namespace greenmoe::moeits {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

void check_simplify_options(const SimplifyOptions& options) {
    const int targets = int(options.factor.has_value()) + int(options.keep.has_value()) +
                        int(options.reduce_percent.has_value());
    usage_check(targets == 1, "give exactly one of --factor, --keep and --reduce (got {})",
                targets);
    if (options.factor) {
        usage_check(std::isfinite(*options.factor), "--factor must be a finite number, got {}",
                    *options.factor);
    }
    if (options.keep) usage_check(*options.keep >= 1, "--keep must be ≥ 1, got {}", *options.keep);
    if (options.reduce_percent) {
        usage_check(*options.reduce_percent > 0.0 && *options.reduce_percent < 100.0,
                    "--reduce must be a percentage in (0, 100), got {}", *options.reduce_percent);
    }
    usage_check(!options.model.empty(), "--model: no model given");
    usage_check(!options.out.empty(), "--out: no output folder given");
    usage_check(options.max_shard_bytes > 0, "--max-shard-size must be positive");
}

// --overwrite replaces only what this command wrote before (or its NMI cache alone), never an
// arbitrary folder given by mistake.
void check_overwrite_target(const fs::path& out) {
    if (!fs::is_directory(out)) return;
    bool only_cache = true;
    for (const auto& entry : fs::directory_iterator(out)) {
        if (entry.path().filename() != "nmi") only_cache = false;
    }
    if (only_cache) return;
    const fs::path summary = out / "summary.json";
    bool ours = false;
    if (fs::is_regular_file(summary)) {
        const Json j = Json::parse(read_file(summary), nullptr, false);
        ours = !j.is_discarded() && j.is_object() && j.contains(kSimplifySummaryMarker);
    }
    check(ours,
          "--overwrite: {} is not an earlier `greenmoe simplify` output (no summary.json from "
          "one); refusing to delete it, remove it yourself or choose another --out",
          out.string());
}

// MoEITS's similarity matrices, where the criterion is moeits or the target is the rule's
// factor (the other criteria keep as many experts as the rule would).
struct Similarity {
    bool needed = false;
    fs::path cache_dir;
    std::vector<std::vector<double>> Ms;
    std::vector<bool> reused;
    double seconds = 0.0;
};

Similarity similarity_for(const SimplifyOptions& options, const MoeModel& model,
                          SimplifyResult& result) {
    const auto t_start = Clock::now();
    Similarity s;
    s.cache_dir = options.nmi_cache.empty() ? options.out / "nmi" : options.nmi_cache;
    s.needed = options.criterion == Criterion::Nmi || !options.keep.has_value();
    s.reused.assign(model.layers().size(), false);
    if (!s.needed) return s;
    s.Ms = layer_similarities(model, s.cache_dir, options.show_progress, options.memory_budget,
                              &s.reused);
    for (const bool r : s.reused) (r ? result.nmi_layers_reused : result.nmi_layers_computed)++;
    emit(options,
         fmt::format("similarity: {} layers computed, {} reused from {}",
                     result.nmi_layers_computed, result.nmi_layers_reused, s.cache_dir.string()));
    s.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
    return s;
}

// The rule's factor: given, or the one that removes --reduce P % of expert parameters.
std::optional<double> target_factor(const SimplifyOptions& options, const MoeModel& model,
                                    const Similarity& similarity) {
    if (options.factor) return options.factor;
    if (!options.reduce_percent) return std::nullopt;
    std::vector<int> counts;
    // One min_keep for the searched factor: the largest top-k of any layer.
    int min_keep = 1;
    for (const auto& l : model.layers()) {
        counts.push_back(l.n_experts);
        min_keep = std::max(min_keep, l.top_k);
    }
    const double factor =
        factor_for_reduction(similarity.Ms, counts, *options.reduce_percent / 100.0, min_keep);
    emit(options, fmt::format("--reduce {}%: factor {}", *options.reduce_percent, factor));
    return factor;
}

Json calibration_summary(const SimplifyOptions& options, const Calibration& c) {
    Json files = Json::array();
    for (const auto& f : c.files) files.push_back(f.string());
    return {{"data", options.calibration_data},
            {"files", files},
            {"tokens", c.tokens},
            {"sequences", c.sequences},
            {"sequence_length", c.sequence_length}};
}

int64_t tensor_parameters(const std::vector<OutputTensor>& tensors) {
    int64_t total = 0;
    for (const auto& t : tensors) {
        if (t.name == kMoeBiasTensor) continue;  // routing state, not a parameter
        int64_t n = 1;
        for (const int64_t d : t.shape) n *= d;
        total += n;
    }
    return total;
}

// Writes the kept experts' model, the similarity cache and summary.json into options.out.
void write_pruned(const SimplifyOptions& options, const MoeModel& model,
                  const Similarity& similarity, Clock::time_point t_start, SimplifyResult& result) {
    std::vector<std::vector<int>> kept;
    for (const LayerOutcome& o : result.layers) {
        kept.push_back(o.kept);
        result.expert_params_before += o.expert_params_before;
        result.expert_params_after += o.expert_params_after;
    }
    PrunedOutput out = pruned_output(
        model, kept, {options.max_shard_bytes, options.overwrite, options.show_progress});
    check_output_tensors(model, out, options.out);
    result.params_before = model.tensors().total_parameters();
    if (const TensorInfo* t = model.tensors().find(kMoeBiasTensor)) {
        result.params_before -= t->numel();  // routing state, not a parameter
    }
    result.params_after = tensor_parameters(out.tensors);

    Json summary =
        simplify_summary(options, model, result, similarity.cache_dir, similarity.needed);
    const Json identity = similarity.needed ? model_identity(model) : Json();
    const bool copy_extras = fs::is_directory(options.model) && !model.is_greenmoe();
    out.write.add_files = [&](const fs::path& staging) {
        if (copy_extras) copy_extra_files(model, staging);
        const auto& layers = model.layers();
        for (size_t i = 0; i < similarity.Ms.size(); ++i) {
            write_nmi_cache(staging / "nmi", layers[i], nmi_cache_key(model, layers[i], identity),
                            similarity.Ms[i]);
        }
        Json files = Json::array();
        for (const auto& entry : fs::directory_iterator(staging)) {
            if (entry.path().extension() == ".safetensors") {
                files.push_back(entry.path().filename().string());
            }
        }
        std::sort(files.begin(), files.end());
        summary["files"] = files;
        summary["seconds"] = {
            {"similarity", similarity.seconds},
            {"total", std::chrono::duration<double>(Clock::now() - t_start).count()}};
        write_file_atomic(staging / "summary.json", summary.dump(2) + "\n");
    };
    const ModelFolderWritten written = write_model_folder(options.out, out.tensors, out.write);
    result.files = written.files;
    result.summary = summary;
}

}  // namespace

SimplifyResult simplify_model(const SimplifyOptions& options) {
    const auto t_start = Clock::now();
    check_simplify_options(options);
    const MoeModel model = MoeModel::open(options.model, options.kind_weights);
    check_keep_fits(options, model);
    check_input_tensors(model);
    check_model_output(options.out, model.tensors().source(), options.overwrite, {"nmi"});
    if (options.overwrite) check_overwrite_target(options.out);
    log_model(options, model);

    SimplifyResult result;
    result.architecture = model.architecture();
    result.skipped = model.skipped();
    const auto criterion = make_criterion(options.criterion);
    const std::optional<Calibration> calibration = calibrate_for(options, model, *criterion);
    if (calibration) result.calibration = calibration_summary(options, *calibration);
    const Similarity similarity = similarity_for(options, model, result);
    result.factor = target_factor(options, model, similarity);
    result.layers = choose_experts(options, model, similarity.Ms, similarity.reused,
                                   calibration ? &*calibration : nullptr, result.factor);
    write_pruned(options, model, similarity, t_start, result);
    log_outcome(options, result, result.files.size());
    return result;
}

}  // namespace greenmoe::moeits

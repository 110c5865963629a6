// Calibration for the criterion and the experts each layer keeps (see expert_choice.h).
#include "greenmoe/moeits/expert_choice.h"

#include <algorithm>
#include <limits>
#include <memory>

#include "greenmoe/core/error.h"
#include "greenmoe/moeits/prune_rule.h"

namespace greenmoe::moeits {

void check_keep_fits(const SimplifyOptions& options, const MoeModel& model) {
    if (!options.keep) return;
    for (const MoeLayer& layer : model.layers()) {
        usage_check(*options.keep <= layer.n_experts,
                    "--keep {}: layer {} of {} has only {} experts (give at most {})",
                    *options.keep, layer.layer, options.model.string(), layer.n_experts,
                    layer.n_experts);
    }
}

std::optional<Calibration> calibrate_for(const SimplifyOptions& options, const MoeModel& model,
                                         const ExpertCriterion& criterion) {
    if (!criterion.needs_calibration()) return std::nullopt;
    const char* name = criterion_name(criterion.kind());
    usage_check(!options.calibration_data.empty(),
                "--criterion {} needs calibration data: --calibration-data <token shards> (e.g. "
                "the run's validation shards, tokenized for this model)",
                name);
    CalibrationOptions c;
    c.data = options.calibration_data;
    c.tokens = options.calibration_tokens;
    c.sequence_length = options.calibration_sequence_length;
    c.naee = criterion.needs_reconstruction();
    if (model.is_greenmoe()) {
        usage_check(!c.naee,
                    "--criterion naee runs on Hugging Face models (greenmoe's engine does not "
                    "give every expert's output on every token); {} is a greenmoe checkpoint",
                    options.model.string());
        return calibrate_greenmoe(options.model, c);
    }
    usage_check(std::filesystem::is_directory(options.model),
                "--criterion {} runs the model: give --model as a Hugging Face folder "
                "(config.json beside the weights), not {}",
                name, options.model.string());
    return calibrate(options.model, c);
}

std::vector<LayerOutcome> choose_experts(const SimplifyOptions& options, const MoeModel& model,
                                         const std::vector<std::vector<double>>& Ms,
                                         const std::vector<bool>& reused,
                                         const Calibration* calibration,
                                         const std::optional<double>& factor) {
    const std::unique_ptr<ExpertCriterion> criterion = make_criterion(options.criterion);
    const bool have_nmi = !Ms.empty();
    std::vector<LayerOutcome> outcomes;
    for (size_t i = 0; i < model.layers().size(); ++i) {
        const MoeLayer& layer = model.layers()[i];
        LayerOutcome o;
        o.layer = layer.layer;
        o.n_experts = layer.n_experts;
        o.top_k = layer.top_k;
        o.criterion = options.criterion;
        o.threshold = std::numeric_limits<double>::quiet_NaN();
        o.nmi_cached = have_nmi && reused[i];
        int count = 0;
        if (options.keep) {
            count = *options.keep;
            if (count < layer.top_k) {
                count = layer.top_k;
                o.stopped_at_min_keep = true;
            }
        } else {
            // The target is what MoEITS's rule keeps at the factor: its set for moeits, its
            // count for every other criterion.
            const PruneResult r = prune_layer(Ms[i], layer.n_experts, *factor, layer.top_k);
            o.threshold = r.threshold;
            o.factor = r.factor;
            o.stopped_at_min_keep = r.stopped_at_min_keep;
            count = static_cast<int>(r.kept.size());
            if (options.criterion == Criterion::Nmi) o.kept = r.kept;
        }
        if (o.kept.empty()) {
            LayerContext context;
            context.model = &model;
            context.layer = &layer;
            context.calibration =
                calibration != nullptr ? &calibration->layer(layer.layer) : nullptr;
            context.similarity = have_nmi ? &Ms[i] : nullptr;
            context.seed = options.seed;
            LayerChoice choice = criterion->choose(context, count);
            o.kept = std::move(choice.kept);
            o.scores = std::move(choice.scores);
            if (options.criterion == Criterion::Nmi) {
                // The rule's own threshold and factor, found for this count.
                o.threshold = choice.detail.at("threshold").get<double>();
                o.factor = choice.detail.at("factor").get<double>();
                o.stopped_at_min_keep =
                    o.stopped_at_min_keep || choice.detail.at("stopped_at_min_keep").get<bool>();
            } else {
                o.detail = std::move(choice.detail);
            }
        }
        check(static_cast<int>(o.kept.size()) >= std::min(layer.top_k, layer.n_experts),
              "layer {}: the pruning kept {} experts, fewer than top-k = {}", layer.layer,
              o.kept.size(), layer.top_k);
        o.expert_params_before = layer.params_per_expert * layer.n_experts;
        o.expert_params_after = layer.params_per_expert * static_cast<int64_t>(o.kept.size());
        outcomes.push_back(std::move(o));
    }
    return outcomes;
}

}  // namespace greenmoe::moeits

// Calibration for the criterion and the experts each layer keeps (see expert_choice.h).
#include "greenmoe/moeits/expert_choice.h"

#include <algorithm>
#include <limits>
#include <memory>

#include "greenmoe/core/error.h"
#include "greenmoe/eval/val_loss.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/moeits/prune_rule.h"

namespace greenmoe::moeits {

namespace {

// A greenmoe checkpoint through its own engine: how often the calibration tokens choose each
// expert of every routed MLP, as per-block statistics holding counts only.
Calibration greenmoe_routing_counts(const SimplifyOptions& options) {
    const std::unique_ptr<GptModel> probe = load_model(options.model, 1, 1);
    int T = std::min(256, probe->config().block_size);
    if (options.calibration_sequence_length > 0) {
        T = std::min(T, options.calibration_sequence_length);
    }
    Calibration result;
    // Refuses missing or empty shards and ids beyond the vocabulary before the model runs.
    const std::vector<int32_t> ids = read_calibration_tokens(
        options.calibration_data, std::max<int64_t>(T, options.calibration_tokens),
        probe->config().vocab_size, &result.files);
    const std::unique_ptr<GptModel> model = load_model(options.model, 8, T);
    model->set_training(false);
    model->set_capacity_limits(false);
    const ValidationSet set(options.calibration_data, T,
                            std::max<int64_t>(T, options.calibration_tokens));
    std::vector<int> inputs(size_t(8) * T), targets(inputs.size());
    for (size_t first = 0; first < set.num_sequences(); first += 8) {
        const size_t n = std::min<size_t>(8, set.num_sequences() - first);
        for (size_t i = 0; i < n; ++i) {
            set.sequence(first + i, inputs.data() + i * T, targets.data() + i * T);
        }
        model->forward(inputs.data(), nullptr, static_cast<int>(n), T);
        for (int i = 0; i < model->num_moe_layers(); ++i) {
            if (model->moe_is_attention(i)) continue;
            const std::vector<int64_t>& c = model->moe_stats(i).counts;
            const int block = model->moe_block(i);
            auto it = std::find_if(result.layers.begin(), result.layers.end(),
                                   [&](const LayerCalibration& l) { return l.layer == block; });
            if (it == result.layers.end()) {
                LayerCalibration l;
                l.layer = block;
                l.n_experts = static_cast<int>(c.size());
                l.count.assign(c.size(), 0);
                result.layers.push_back(std::move(l));
                it = result.layers.end() - 1;
            }
            for (size_t e = 0; e < c.size(); ++e) it->count[e] += c[e];
        }
        result.tokens += static_cast<int64_t>(n) * T;
        result.sequences += static_cast<int>(n);
    }
    result.sequence_length = T;
    return result;
}

}  // namespace

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
    if (model.is_greenmoe()) {
        usage_check(criterion.kind() == Criterion::Frequency,
                    "--criterion {} needs expert outputs, which the calibration pass collects on "
                    "Hugging Face models; on greenmoe checkpoints ({}) it counts routing only: "
                    "use frequency",
                    name, options.model.string());
        return greenmoe_routing_counts(options);
    }
    usage_check(std::filesystem::is_directory(options.model),
                "--criterion {} runs the model: give --model as a Hugging Face folder "
                "(config.json beside the weights), not {}",
                name, options.model.string());
    CalibrationOptions c;
    c.data = options.calibration_data;
    c.tokens = options.calibration_tokens;
    c.sequence_length = options.calibration_sequence_length;
    c.naee = criterion.needs_reconstruction();
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

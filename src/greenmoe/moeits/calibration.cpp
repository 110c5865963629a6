// The calibration pass: token shards through a model, MoE layers' statistics summed (see
// calibration.h).
#include "greenmoe/moeits/calibration.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "greenmoe/core/error.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/hf/moe_block.h"
#include "greenmoe/io/token_shard.h"

namespace greenmoe::moeits {

namespace fs = std::filesystem;

namespace {

constexpr int kDefaultSequenceLength = 256;

double dot(const float* a, const float* b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
    return s;
}

// Sums every MoE layer's trace into its LayerCalibration.
class Collector : public hf::MoeObserver {
  public:
    Collector(const hf::HfModel& model, bool naee) : naee_(naee) {
        const hf::ModelConfig& c = model.config();
        for (int l = 0; l < c.num_layers; ++l) {
            const int E = c.layers[static_cast<size_t>(l)].n_experts;
            if (E == 0) continue;
            LayerCalibration s;
            s.layer = l;
            s.n_experts = E;
            s.top_k = c.moe.top_k;
            s.count.assign(static_cast<size_t>(E), 0);
            s.gate_sum.assign(static_cast<size_t>(E), 0.0);
            s.norm_sum.assign(static_cast<size_t>(E), 0.0);
            s.gated_norm_sum.assign(static_cast<size_t>(E), 0.0);
            // The routing rule and the one weight it reads (noaux_tc's correction bias),
            // copied so the statistics outlive the model.
            hf::MoeWeights bias_only;
            bias_only.correction_bias =
                model.weights().layers[static_cast<size_t>(l)].moe.correction_bias;
            s.reroute = [config = c.moe, bias_only, E](
                            const float* logits, int64_t n, const std::vector<bool>& masked,
                            std::vector<int>& experts, std::vector<float>& weights) {
                hf::Routing r = hf::route(config, bias_only, logits, n, E, masked);
                experts = std::move(r.experts);
                weights = std::move(r.weights);
            };
            index_.resize(static_cast<size_t>(c.num_layers), -1);
            index_[static_cast<size_t>(l)] = static_cast<int>(layers_.size());
            layers_.push_back(std::move(s));
        }
    }

    void observe(const hf::MoeLayerTrace& t) override {
        check(static_cast<size_t>(t.layer) < index_.size() && index_[size_t(t.layer)] >= 0,
              "calibration: layer {} is not a MoE layer of the model", t.layer);
        LayerCalibration& s = layers_[static_cast<size_t>(index_[static_cast<size_t>(t.layer)])];
        const hf::Routing& r = *t.routing;
        const int K = r.top_k;
        for (int64_t tok = 0; tok < t.tokens; ++tok) {
            double sum = 0.0;
            for (int k = 0; k < K; ++k) sum += r.weights[static_cast<size_t>(tok * K + k)];
            for (int k = 0; k < K; ++k) {
                const auto slot = static_cast<size_t>(tok * K + k);
                const auto e = static_cast<size_t>(r.experts[slot]);
                const float* y = t.expert_out + static_cast<int64_t>(slot) * t.hidden;
                const double norm = std::sqrt(dot(y, y, t.hidden));
                // A token whose top-k weights sum to 0 gives no weight to any of them.
                const double g = sum > 0.0 ? r.weights[slot] / sum : 0.0;
                s.count[e] += 1;
                s.gate_sum[e] += g;
                s.norm_sum[e] += norm;
                s.gated_norm_sum[e] += g * norm;
            }
        }
        if (naee_) add_naee(s, t);
    }

    bool has_layers() const { return !layers_.empty(); }
    std::vector<LayerCalibration> take() { return std::move(layers_); }

  private:
    // Every expert on every token, reduced to the Gram statistics of LayerCalibration.
    static void add_naee(LayerCalibration& s, const hf::MoeLayerTrace& t) {
        const int E = t.n_experts, K = t.routing->top_k;
        const int64_t n = t.tokens, H = t.hidden;
        std::vector<float> y(static_cast<size_t>(E * n * H));
        for (int e = 0; e < E; ++e) t.run_expert(e, t.x, n, y.data() + e * n * H);
        const auto base = static_cast<size_t>(s.tokens);
        s.tokens += n;
        s.logits.insert(s.logits.end(), t.logits, t.logits + n * E);
        s.gram.resize(static_cast<size_t>(s.tokens * E * E));
        s.dot.resize(static_cast<size_t>(s.tokens * E));
        s.target_sq.resize(static_cast<size_t>(s.tokens));
#pragma omp parallel for schedule(static)
        for (int64_t tok = 0; tok < n; ++tok) {
            // Z from the same expert outputs as the Gram matrix, so that the model's own
            // routing reconstructs it with an error of exactly 0.
            std::vector<double> z(static_cast<size_t>(H), 0.0);
            for (int k = 0; k < K; ++k) {
                const auto slot = static_cast<size_t>(tok * K + k);
                const double w = t.routing->weights[slot];
                const float* ye = y.data() + (t.routing->experts[slot] * n + tok) * H;
                for (int64_t d = 0; d < H; ++d) z[static_cast<size_t>(d)] += w * ye[d];
            }
            const size_t row = base + static_cast<size_t>(tok);
            double zz = 0.0;
            for (const double v : z) zz += v * v;
            s.target_sq[row] = zz;
            for (int e = 0; e < E; ++e) {
                const float* ye = y.data() + (e * n + tok) * H;
                double zd = 0.0;
                for (int64_t d = 0; d < H; ++d) zd += z[static_cast<size_t>(d)] * ye[d];
                s.dot[row * size_t(E) + size_t(e)] = zd;
                for (int f = e; f < E; ++f) {
                    const double g = dot(ye, y.data() + (f * n + tok) * H, H);
                    s.gram[(row * size_t(E) + size_t(e)) * size_t(E) + size_t(f)] = g;
                    s.gram[(row * size_t(E) + size_t(f)) * size_t(E) + size_t(e)] = g;
                }
            }
        }
    }

    bool naee_;
    std::vector<int> index_;
    std::vector<LayerCalibration> layers_;
};

}  // namespace

const LayerCalibration& Calibration::layer(int block) const {
    for (const auto& l : layers) {
        if (l.layer == block) return l;
    }
    fail("calibration: no statistics for layer {} (not a routed MoE layer of the model)", block);
}

std::vector<int32_t> read_calibration_tokens(const std::string& pattern, int64_t max_tokens,
                                             int64_t vocab_size, std::vector<fs::path>* files) {
    usage_check(!pattern.empty(),
                "--calibration-data: no token shards given (a .bin/.npy file, a folder or a "
                "glob of them)");
    usage_check(max_tokens > 0, "--calibration-tokens must be positive, got {}", max_tokens);
    std::vector<fs::path> shards;
    try {
        shards = list_token_shards(pattern);
    } catch (const Error& e) {
        fail("--calibration-data {}: {}", pattern, e.what());
    }
    std::vector<int32_t> ids;
    for (const fs::path& path : shards) {
        if (static_cast<int64_t>(ids.size()) >= max_tokens) break;
        const TokenShard shard = TokenShard::open(path);
        if (files != nullptr) files->push_back(path);
        const auto take =
            std::min<int64_t>(static_cast<int64_t>(shard.size()), max_tokens - int64_t(ids.size()));
        for (int64_t i = 0; i < take; ++i) {
            const uint32_t id = shard.token(static_cast<size_t>(i));
            check(static_cast<int64_t>(id) < vocab_size,
                  "--calibration-data {}: token {} is id {}, but the model's vocabulary has {} "
                  "ids: the shards were tokenized for another vocabulary",
                  path.string(), i, id, vocab_size);
            ids.push_back(static_cast<int32_t>(id));
        }
    }
    check(!ids.empty(), "--calibration-data {}: the shards ({}) hold no tokens", pattern,
          shards.size() == 1 ? shards.front().string() : std::to_string(shards.size()) + " files");
    return ids;
}

Calibration calibrate(hf::HfModel& model, const CalibrationOptions& options) {
    const hf::ModelConfig& c = model.config();
    Calibration result;
    const std::vector<int32_t> ids =
        read_calibration_tokens(options.data, options.tokens, c.vocab_size, &result.files);
    int T = options.sequence_length;
    usage_check(T >= 0, "calibration sequence length must be positive, got {}", T);
    if (T == 0) {
        T = kDefaultSequenceLength;
        if (c.rope.max_position > 0) T = std::min(T, c.rope.max_position);
    }
    result.sequence_length = T;
    result.tokens = static_cast<int64_t>(ids.size());
    // Sequences of T tokens in shard order; the remainder is one shorter sequence.
    std::vector<std::span<const int32_t>> sequences;
    for (size_t at = 0; at < ids.size(); at += static_cast<size_t>(T)) {
        sequences.emplace_back(ids.data() + at, std::min(ids.size() - at, static_cast<size_t>(T)));
    }
    result.sequences = static_cast<int>(sequences.size());

    Collector collector(model, options.naee);
    check(collector.has_layers(), "{}: the model has no routed MoE layer to calibrate",
          c.source.string());
    model.set_moe_observer(&collector);
    try {
        const auto B = static_cast<size_t>(std::max(1, options.batch_sequences));
        for (size_t first = 0; first < sequences.size(); first += B) {
            const size_t count = std::min(B, sequences.size() - first);
            std::vector<std::span<const int32_t>> batch(sequences.begin() + long(first),
                                                        sequences.begin() + long(first + count));
            std::vector<hf::KvCache> caches(count);
            std::vector<hf::KvCache*> cache_ptrs;
            for (auto& cache : caches) cache_ptrs.push_back(&cache);
            model.forward_batch(batch, cache_ptrs);
        }
    } catch (...) {
        model.set_moe_observer(nullptr);
        throw;
    }
    model.set_moe_observer(nullptr);
    result.layers = collector.take();
    return result;
}

Calibration calibrate(const fs::path& model_dir, const CalibrationOptions& options) {
    hf::HfModel model = hf::HfModel::load(model_dir);
    return calibrate(model, options);
}

}  // namespace greenmoe::moeits

// The MoEITS pruning pipeline: similarity matrices (cached), expert choice, model writing
// (see simplify.h).
#include "greenmoe/moeits/simplify.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <span>
#include <unordered_map>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/core/sha256.h"
#include "greenmoe/eval/val_loss.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/npy.h"
#include "greenmoe/model/gpt_config.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/moeits/config_check.h"
#include "greenmoe/moeits/nmi.h"
#include "greenmoe/moeits/prune_rule.h"

namespace greenmoe::moeits {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr const char* kCacheFormat = "greenmoe-moeits-nmi/1";
constexpr const char* kSummaryMarker = "greenmoe_simplify";
constexpr const char* kGreenmoeConfigKey = "greenmoe.model";
constexpr const char* kGreenmoeMoeitsKey = "greenmoe.moeits";

// Files of an input folder that are weights in some format: never copied beside the
// pruned weights (they would still hold every expert).
bool is_weight_file(const std::string& name) {
    for (const char* ext : {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack",
                            ".gguf", ".onnx", ".npz"}) {
        if (name.ends_with(ext)) return true;
    }
    return name.ends_with(".safetensors.index.json") || name.ends_with(".bin.index.json");
}

// SHA-256 of a safetensors file's header (length prefix and JSON): names, shapes and offsets.
std::string header_sha256(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    uint64_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 8);
    check(in.good() && n <= 100'000'000, "{}: cannot read the safetensors header", path.string());
    std::string bytes(8 + n, '\0');
    std::memcpy(bytes.data(), &n, 8);
    in.read(bytes.data() + 8, static_cast<std::streamsize>(n));
    check(in.good(), "{}: cannot read the safetensors header", path.string());
    return sha256_hex(bytes);
}

Json model_identity(const MoeModel& model) {
    Json files = Json::array();
    for (const auto& shard : model.tensors().shards()) {
        const fs::path& p = shard.path();
        files.push_back({{"name", p.filename().string()},
                         {"size", fs::file_size(p)},
                         {"mtime", fs::last_write_time(p).time_since_epoch().count()},
                         {"header_sha256", header_sha256(p)}});
    }
    Json id = {{"files", files}};
    if (model.tensors().sharded()) {
        id["index_sha256"] = sha256_file(model.tensors().source());
    }
    return id;
}

fs::path npy_path(const fs::path& dir, int layer) {
    return dir / fmt::format("layer_{}.npy", layer);
}
fs::path key_path(const fs::path& dir, int layer) {
    return dir / fmt::format("layer_{}.json", layer);
}

// The cached M of a layer if its key matches, else nullopt (a stale or foreign entry).
std::optional<std::vector<double>> read_cached(const fs::path& dir, const MoeLayer& layer,
                                               const Json& key) {
    const fs::path npy = npy_path(dir, layer.layer), kp = key_path(dir, layer.layer);
    if (!fs::is_regular_file(npy) || !fs::is_regular_file(kp)) return std::nullopt;
    const Json stored = Json::parse(read_file(kp), nullptr, false);
    if (stored.is_discarded() || stored != key) return std::nullopt;
    NpyArray a;
    try {
        a = read_npy(npy);
    } catch (const Error&) {
        return std::nullopt;
    }
    const int64_t E = layer.n_experts;
    if (a.descr != "<f8" || a.shape != std::vector<int64_t>{E, E}) return std::nullopt;
    std::vector<double> M(static_cast<size_t>(E * E));
    std::memcpy(M.data(), a.data.data(), M.size() * sizeof(double));
    return M;
}

void write_cached(const fs::path& dir, const MoeLayer& layer, const Json& key,
                  const std::vector<double>& M) {
    fs::create_directories(dir);
    const int64_t E = layer.n_experts;
    // The matrix first: a key is only ever beside the matrix it describes.
    write_npy(npy_path(dir, layer.layer), M.data(), {E, E});
    write_file_atomic(key_path(dir, layer.layer), key.dump(2) + "\n");
}

std::string join(const std::vector<int>& v) {
    std::string s;
    for (const int x : v) {
        s += s.empty() ? "" : ",";
        s += std::to_string(x);
    }
    return s;
}

// The experts a baseline criterion keeps: `count` of them, ascending.
std::vector<int> choose_random(int n_experts, int count, uint64_t seed, int layer) {
    std::vector<int> order(static_cast<size_t>(n_experts));
    std::iota(order.begin(), order.end(), 0);
    Rng rng{rng_key(seed, static_cast<uint64_t>(layer), 0x6d6f6569ULL), 0};
    for (int i = 0; i < count; ++i) {
        const auto span = static_cast<uint64_t>(n_experts - i);
        const int j = i + static_cast<int>(rng.next_u64() % span);
        std::swap(order[i], order[j]);
    }
    std::vector<int> kept(order.begin(), order.begin() + count);
    std::sort(kept.begin(), kept.end());
    return kept;
}

// The `count` experts of highest score, in ascending index order; ties go to the lower
// index, so the choice is deterministic.
std::vector<int> keep_highest(const std::vector<double>& score, int count) {
    std::vector<int> order(score.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return score[size_t(a)] > score[size_t(b)]; });
    std::vector<int> kept(order.begin(), order.begin() + count);
    std::sort(kept.begin(), kept.end());
    return kept;
}

std::vector<int> choose_router_norm(const MoeModel& model, const MoeLayer& layer, int count) {
    const TensorInfo& t = model.tensors().get(layer.router_weight);
    const std::vector<float> w = model.tensors().read_f32(layer.router_weight);
    const auto cols = static_cast<size_t>(t.shape[1]);
    std::vector<double> norm(static_cast<size_t>(layer.n_experts));
    for (size_t e = 0; e < norm.size(); ++e) {
        double s = 0.0;
        for (size_t c = 0; c < cols; ++c) s += double(w[e * cols + c]) * w[e * cols + c];
        norm[e] = std::sqrt(s);
    }
    return keep_highest(norm, count);
}

// Original expert indices of an earlier pruning (config "moeits_kept_experts"), composed with
// this one's, so the record always refers to the first model's numbering.
Json compose_kept(const Json* earlier, const MoeModel& model,
                  const std::vector<std::vector<int>>& kept) {
    Json out = Json::object();
    for (size_t i = 0; i < model.layers().size(); ++i) {
        const std::string key = std::to_string(model.layers()[i].layer);
        std::vector<int> original = kept[i];
        if (earlier != nullptr && earlier->is_object() && earlier->contains(key)) {
            std::vector<int> before;
            try {
                before = earlier->at(key).get<std::vector<int>>();
            } catch (const Json::exception&) {
                before.clear();
            }
            if (before.size() == static_cast<size_t>(model.layers()[i].n_experts)) {
                for (int& e : original) e = before[static_cast<size_t>(e)];
            }
        }
        out[key] = original;
    }
    return out;
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
        ours = !j.is_discarded() && j.is_object() && j.contains(kSummaryMarker);
    }
    check(ours,
          "--overwrite: {} is not an earlier `greenmoe simplify` output (no summary.json from "
          "one); refusing to delete it, remove it yourself or choose another --out",
          out.string());
}

double percent(int64_t part, int64_t whole) {
    return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

// How often the calibration tokens choose each expert of every routed MLP, by block.
std::map<int, std::vector<int64_t>> routing_counts(const SimplifyOptions& options) {
    usage_check(!options.calibration_data.empty(),
                "--criterion frequency needs calibration data: --calibration-data <shard pattern> "
                "(e.g. the run's validation shards)");
    const std::unique_ptr<GptModel> probe = load_model(options.model, 1, 1);
    const int T = std::min(256, probe->config().block_size);
    const std::unique_ptr<GptModel> model = load_model(options.model, 8, T);
    model->set_training(false);
    model->set_capacity_limits(false);
    const ValidationSet set(options.calibration_data, T,
                            std::max<int64_t>(T, options.calibration_tokens));
    std::map<int, std::vector<int64_t>> counts;
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
            std::vector<int64_t>& total = counts[model->moe_block(i)];
            total.resize(c.size(), 0);
            for (size_t e = 0; e < c.size(); ++e) total[e] += c[e];
        }
    }
    return counts;
}

}  // namespace

Criterion parse_criterion(const std::string& name) {
    if (name == "nmi") return Criterion::Nmi;
    if (name == "random") return Criterion::Random;
    if (name == "router-norm") return Criterion::RouterNorm;
    if (name == "frequency") return Criterion::Frequency;
    usage_fail(
        "--criterion: unknown criterion '{}' (expected nmi, random, router-norm or frequency)",
        name);
}

const char* criterion_name(Criterion c) {
    switch (c) {
        case Criterion::Nmi:
            return "nmi";
        case Criterion::Random:
            return "random";
        case Criterion::RouterNorm:
            return "router-norm";
        case Criterion::Frequency:
            return "frequency";
    }
    return "?";
}

namespace {

Json cache_key(const MoeModel& model, const MoeLayer& layer, const Json& identity) {
    return {{"format", kCacheFormat},
            {"model", identity},
            {"architecture", model.architecture()},
            {"layer", layer.layer},
            {"n_experts", layer.n_experts},
            {"kinds", layer.kind_names},
            {"kind_weights", layer.kind_weights}};
}

}  // namespace

Json nmi_cache_key(const MoeModel& model, const MoeLayer& layer) {
    return cache_key(model, layer, model_identity(model));
}

std::vector<std::vector<double>> layer_similarities(const MoeModel& model,
                                                    const fs::path& cache_dir, bool show_progress,
                                                    uint64_t memory_budget,
                                                    std::vector<bool>* reused) {
    const auto& layers = model.layers();
    std::vector<std::vector<double>> Ms(layers.size());
    std::vector<bool> from_cache(layers.size(), false);
    const Json identity = model_identity(model);
    std::vector<Json> keys;
    keys.reserve(layers.size());
    std::vector<SimilarityLimits> limits(layers.size());
    uint64_t total_pairs = 0;
    for (size_t i = 0; i < layers.size(); ++i) {
        Json key = cache_key(model, layers[i], identity);
        if (!cache_dir.empty()) {
            if (auto M = read_cached(cache_dir, layers[i], key)) {
                Ms[i] = std::move(*M);
                from_cache[i] = true;
            }
        }
        if (!from_cache[i]) {
            const auto E = static_cast<uint64_t>(layers[i].n_experts);
            total_pairs += layers[i].kind_names.size() * E * (E - 1) / 2;
            // The largest kind bounds every kind's memory; 16-bit floats (every real
            // checkpoint) have too few distinct values to need 4-byte bin indices, wider
            // ones are counted as if they did.
            const MoeLayer& layer = layers[i];
            MatrixFootprint footprint;
            bool all_bf16 = true, all_16_bit = true;
            for (size_t k = 0; k < layer.kind_names.size(); ++k) {
                footprint.n =
                    std::max(footprint.n, static_cast<size_t>(model.matrix_numel(layer, int(k))));
                const int n_tensors = layer.stacked ? 1 : layer.n_experts;
                for (int e = 0; e < n_tensors; ++e) {
                    const DType t =
                        model.tensors()
                            .get(layer.stacked ? layer.kind_tensors[k]
                                               : layer.expert_tensor(e, layer.kind_tensors[k]))
                            .dtype;
                    all_bf16 = all_bf16 && t == DType::BF16;
                    all_16_bit = all_16_bit && (t == DType::BF16 || t == DType::F16);
                }
            }
            footprint.stored = all_bf16     ? StoredFloat::bf16
                               : all_16_bit ? StoredFloat::f16
                                            : StoredFloat::wide;
            // Grouping lowers the binned matrices held down to two at a time, and fewer
            // threads the working memory, before the budget is refused.
            auto plan = plan_similarity(memory_budget, footprint, layer.n_experts);
            if (!plan) {
                SimilarityLimits least;
                least.max_binned = 2;
                least.max_threads = 1;
                fail(
                    "layer {}: comparing its {} experts' matrices ({} values each) needs at "
                    "least {} (two binned matrices at a time, one thread) but --memory-budget "
                    "is {}: raise the budget",
                    layer.layer, E, footprint.n,
                    format_byte_size(similarity_peak_bytes(footprint, layer.n_experts, least)),
                    format_byte_size(memory_budget));
            }
            limits[i] = *plan;
        }
        keys.push_back(std::move(key));
    }
    std::optional<ProgressBar> bar;
    if (show_progress && total_pairs > 0) bar.emplace("similarity", total_pairs, "pairs");
    uint64_t base = 0;
    for (size_t i = 0; i < layers.size(); ++i) {
        if (from_cache[i]) continue;
        const MoeLayer& layer = layers[i];
        const std::string suffix = fmt::format("layer {}", layer.layer);
        Ms[i] = layer_similarity(
            layer.n_experts, layer.kind_weights,
            [&](int e, int k, std::vector<float>& out) { model.read_matrix(layer, e, k, out); },
            [&](size_t done, size_t) {
                if (bar) bar->update(base + done, suffix);
            },
            limits[i]);
        const auto E = static_cast<uint64_t>(layer.n_experts);
        base += layer.kind_names.size() * E * (E - 1) / 2;
        check(Ms[i].size() == E * E, "layer {}: similarity has {} entries, expected {}",
              layer.layer, Ms[i].size(), E * E);
        if (!cache_dir.empty()) write_cached(cache_dir, layer, keys[i], Ms[i]);
    }
    if (bar) bar->finish();
    if (reused != nullptr) *reused = from_cache;
    return Ms;
}

std::vector<OutputTensor> simplified_tensors(const MoeModel& model,
                                             const std::vector<std::vector<int>>& kept) {
    const auto& layers = model.layers();
    const SafetensorsModel& st = model.tensors();
    check(kept.size() == layers.size(), "kept lists: {} for {} MoE layers", kept.size(),
          layers.size());
    // What to do with each special tensor: rename an expert's, or slice rows of experts.
    struct ExpertRef {
        size_t layer;
        int expert;
        std::string suffix;
    };
    std::unordered_map<std::string, ExpertRef> expert_of;
    std::unordered_map<std::string, size_t> sliced;  // dim 0 = expert
    for (size_t i = 0; i < layers.size(); ++i) {
        const MoeLayer& layer = layers[i];
        for (size_t k = 0; k < kept[i].size(); ++k) {
            check(kept[i][k] >= 0 && kept[i][k] < layer.n_experts &&
                      (k == 0 || kept[i][k] > kept[i][k - 1]),
                  "layer {}: kept experts must be ascending indices below {}", layer.layer,
                  layer.n_experts);
        }
        check(!kept[i].empty(), "layer {}: at least one expert must be kept", layer.layer);
        for (const auto& r : layer.router_tensors) sliced[r] = i;
        if (layer.stacked) {
            for (const auto& s : layer.stacked_tensors) sliced[s] = i;
        } else {
            for (int e = 0; e < layer.n_experts; ++e) {
                for (const auto& s : layer.expert_suffixes) {
                    expert_of[layer.expert_tensor(e, s)] = {i, e, s};
                }
            }
        }
    }
    std::vector<OutputTensor> out;
    out.reserve(st.tensor_names().size());
    for (const auto& name : st.tensor_names()) {
        const TensorInfo& t = st.get(name);
        const auto bytes = st.bytes(name);
        if (const auto it = expert_of.find(name); it != expert_of.end()) {
            const ExpertRef& ref = it->second;
            const auto& k = kept[ref.layer];
            const auto pos = std::lower_bound(k.begin(), k.end(), ref.expert);
            if (pos == k.end() || *pos != ref.expert) continue;  // pruned
            const int renumbered = static_cast<int>(pos - k.begin());
            out.push_back({layers[ref.layer].expert_tensor(renumbered, ref.suffix),
                           t.dtype,
                           t.shape,
                           {bytes}});
            continue;
        }
        if (const auto it = sliced.find(name); it != sliced.end()) {
            const auto& k = kept[it->second];
            const size_t row = t.nbytes / static_cast<size_t>(t.shape[0]);
            OutputTensor o{name, t.dtype, t.shape, {}};
            o.shape[0] = static_cast<int64_t>(k.size());
            // Runs of consecutive kept experts become one piece.
            for (size_t a = 0; a < k.size();) {
                size_t b = a + 1;
                while (b < k.size() && k[b] == k[b - 1] + 1) ++b;
                o.pieces.push_back(bytes.subspan(row * static_cast<size_t>(k[a]), row * (b - a)));
                a = b;
            }
            out.push_back(std::move(o));
            continue;
        }
        out.push_back({name, t.dtype, t.shape, {bytes}});
    }
    return out;
}

Json simplified_hf_config(const MoeModel& model, const std::vector<std::vector<int>>& kept) {
    Json config = model.config();
    std::vector<int> by_block(static_cast<size_t>(model.num_layers()), 0);
    int largest = 0;
    for (size_t i = 0; i < model.layers().size(); ++i) {
        const int n = static_cast<int>(kept[i].size());
        by_block[static_cast<size_t>(model.layers()[i].layer)] = n;
        largest = std::max(largest, n);
    }
    const Json* earlier = config.contains("moeits_kept_experts")
                              ? &model.config().at("moeits_kept_experts")
                              : nullptr;
    config["moeits_kept_experts"] = compose_kept(earlier, model, kept);
    config["num_experts_by_block"] = by_block;
    config[model.experts_key()] = largest;
    return config;
}

Json simplified_greenmoe_config(const MoeModel& model, const std::vector<std::vector<int>>& kept) {
    Json config = model.config();
    std::vector<int> by_layer(static_cast<size_t>(model.num_layers()), 0);
    for (size_t i = 0; i < model.layers().size(); ++i) {
        by_layer[static_cast<size_t>(model.layers()[i].layer)] = static_cast<int>(kept[i].size());
    }
    config["n_experts_by_layer"] = by_layer;
    return config;
}

// A greenmoe model's loss-free balancing bias steers its routing, so the simplified model
// keeps the rows of its kept experts (moa attention and unpruned routed layers whole). The
// bias is in the model file of an earlier simplify output, or in the optimizer state beside
// a checkpoint's weights; a model trained without it has none (nullopt).
std::optional<std::vector<float>> simplified_greenmoe_bias(
    const MoeModel& model, const std::vector<std::vector<int>>& kept) {
    std::optional<SafetensorsFile> optimizer;
    if (!model.tensors().find(kMoeBiasTensor)) {
        const fs::path path = model.tensors().source().parent_path() / "optimizer.safetensors";
        if (fs::is_regular_file(path)) optimizer = SafetensorsFile::open(path);
        if (!optimizer || !optimizer->find(kMoeBiasTensor)) return std::nullopt;
    }
    GptConfig config;
    from_json(model.config(), config);
    config.finalize();
    const std::vector<int64_t> shape = config.moe_bias_shape();
    int64_t size = 1;
    for (const int64_t d : shape) size *= d;
    std::vector<float> bias(static_cast<size_t>(size));
    if (optimizer) {
        optimizer->read_f32_into(kMoeBiasTensor, bias.data(), shape);
    } else {
        model.tensors().file_of(kMoeBiasTensor).read_f32_into(kMoeBiasTensor, bias.data(), shape);
    }

    std::map<int, const std::vector<int>*> kept_of_block;
    for (size_t i = 0; i < model.layers().size(); ++i) {
        kept_of_block[model.layers()[i].layer] = &kept[i];
    }
    std::vector<float> out;
    size_t offset = 0;
    for (const GptConfig::RoutedSlot& slot : config.routed_slots()) {
        const float* row = bias.data() + offset;
        offset += static_cast<size_t>(slot.experts);
        const auto it = kept_of_block.find(slot.block);
        if (slot.attention || it == kept_of_block.end()) {
            out.insert(out.end(), row, row + slot.experts);
            continue;
        }
        for (const int e : *it->second) out.push_back(row[e]);
    }
    return out;
}

namespace {

using Clock = std::chrono::steady_clock;

void emit(const SimplifyOptions& options, const std::string& line) {
    if (options.log) {
        options.log(line);
        return;
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

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

// --keep N cannot keep more experts than a layer has: a typo (--keep 80 for 8) would
// otherwise "prune" to an unchanged copy.
void check_keep_fits(const SimplifyOptions& options, const MoeModel& model) {
    if (!options.keep) return;
    for (const MoeLayer& layer : model.layers()) {
        usage_check(*options.keep <= layer.n_experts,
                    "--keep {}: layer {} of {} has only {} experts (give at most {})",
                    *options.keep, layer.layer, options.model.string(), layer.n_experts,
                    layer.n_experts);
    }
}

std::vector<TensorInfo> input_tensor_list(const SafetensorsModel& model) {
    std::vector<TensorInfo> list;
    for (const auto& name : model.tensor_names()) list.push_back(model.get(name));
    return list;
}

std::vector<TensorInfo> output_tensor_list(const std::vector<OutputTensor>& tensors) {
    std::vector<TensorInfo> list;
    for (const OutputTensor& t : tensors) {
        TensorInfo info;
        info.name = t.name;
        info.dtype = t.dtype;
        info.shape = t.shape;
        info.nbytes = t.nbytes();
        list.push_back(std::move(info));
    }
    return list;
}

// Per layer: the experts the criterion keeps at the target (a fixed count, or the rule's
// factor given or found for --reduce).
std::vector<LayerOutcome> choose_experts(const SimplifyOptions& options, const MoeModel& model,
                                         const std::vector<std::vector<double>>& Ms,
                                         const std::vector<bool>& reused,
                                         std::map<int, std::vector<int64_t>>& frequency,
                                         const std::optional<double>& factor) {
    const bool need_nmi = !Ms.empty();
    std::vector<LayerOutcome> outcomes;
    for (size_t i = 0; i < model.layers().size(); ++i) {
        const MoeLayer& layer = model.layers()[i];
        LayerOutcome o;
        o.layer = layer.layer;
        o.n_experts = layer.n_experts;
        o.top_k = layer.top_k;
        o.threshold = std::numeric_limits<double>::quiet_NaN();
        o.nmi_cached = need_nmi && reused[i];
        int count = 0;
        if (options.keep) {
            count = *options.keep;
            if (count < layer.top_k) {
                count = layer.top_k;
                o.stopped_at_min_keep = true;
            }
        }
        if (need_nmi && (options.criterion == Criterion::Nmi || !options.keep)) {
            PruneResult r = options.keep
                                ? prune_layer_to_keep(Ms[i], layer.n_experts, count, layer.top_k)
                                : prune_layer(Ms[i], layer.n_experts, *factor, layer.top_k);
            o.kept = r.kept;
            o.threshold = r.threshold;
            o.factor = r.factor;
            o.stopped_at_min_keep = o.stopped_at_min_keep || r.stopped_at_min_keep;
            count = static_cast<int>(r.kept.size());
        }
        if (options.criterion == Criterion::Random) {
            o.kept = choose_random(layer.n_experts, count, options.seed, layer.layer);
        } else if (options.criterion == Criterion::RouterNorm) {
            o.kept = choose_router_norm(model, layer, count);
        } else if (options.criterion == Criterion::Frequency) {
            const std::vector<int64_t>& c = frequency[layer.layer];
            check(static_cast<int>(c.size()) == layer.n_experts,
                  "layer {}: the model routed among {} experts, the checkpoint has {}", layer.layer,
                  c.size(), layer.n_experts);
            o.kept = keep_highest(std::vector<double>(c.begin(), c.end()), count);
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

// What is written: the tensors (views into the input's mmap, and the greenmoe bias held
// here), the config, and the file options.
struct PrunedOutput {
    std::vector<OutputTensor> tensors;
    std::optional<std::vector<float>> bias;
    Json config;  // config.json, or greenmoe's model config
    ModelFolderWriteOptions write;
};

PrunedOutput pruned_output(const SimplifyOptions& options, const MoeModel& model,
                           const std::vector<std::vector<int>>& kept) {
    PrunedOutput out;
    out.tensors = simplified_tensors(model, kept);
    std::erase_if(out.tensors, [](const OutputTensor& t) { return t.name == kMoeBiasTensor; });
    ModelFolderWriteOptions& w = out.write;
    w.max_shard_bytes = options.max_shard_bytes;
    w.overwrite = options.overwrite;
    w.input = model.tensors().source();
    w.replaceable_entries = {"nmi"};
    w.show_progress = options.show_progress;
    w.shard_metadata = model.tensors().metadata();
    if (!model.is_greenmoe()) {
        if (!w.shard_metadata.count("format")) w.shard_metadata["format"] = "pt";
        out.config = simplified_hf_config(model, kept);
        w.config = out.config;
        Json meta = model.tensors().index_metadata();
        meta.erase("total_size");
        w.index_metadata = meta;
        return out;
    }
    out.config = simplified_greenmoe_config(model, kept);
    out.bias = simplified_greenmoe_bias(model, kept);
    if (out.bias) {
        GptConfig pruned;
        from_json(out.config, pruned);
        pruned.finalize();
        out.tensors.push_back({kMoeBiasTensor,
                               DType::F32,
                               pruned.moe_bias_shape(),
                               {std::as_bytes(std::span<const float>(*out.bias))}});
    }
    w.single_file = true;  // greenmoe loads one model.safetensors
    w.shard_metadata[kGreenmoeConfigKey] = out.config.dump();
    Json earlier;
    if (const auto it = w.shard_metadata.find(kGreenmoeMoeitsKey); it != w.shard_metadata.end()) {
        earlier = Json::parse(it->second, nullptr, false);
    }
    const Json* prev = earlier.is_object() && earlier.contains("kept_experts")
                           ? &earlier["kept_experts"]
                           : nullptr;
    w.shard_metadata[kGreenmoeMoeitsKey] =
        Json{{"kept_experts", compose_kept(prev, model, kept)}}.dump();
    return out;
}

// The input model's tensors against its config: checked before anything is computed or
// written (the similarity cache included).
void check_input_tensors(const MoeModel& model) {
    const std::string in = model.tensors().source().string();
    if (model.is_greenmoe()) {
        check_greenmoe_tensors(input_tensor_list(model.tensors()), model.config(), in);
    } else {
        check_hf_tensors(input_tensor_list(model.tensors()), model.config(), in);
    }
}

// The tensors about to be written against the config written with them.
void check_output_tensors(const SimplifyOptions& options, const MoeModel& model,
                          const PrunedOutput& out) {
    const std::string where = options.out.string() + " (about to be written)";
    const std::vector<TensorInfo> written = output_tensor_list(out.tensors);
    if (model.is_greenmoe()) {
        check_greenmoe_tensors(written, out.config, where);
    } else {
        check_hf_tensors(written, out.config, where);
    }
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
    return row;
}

// summary.json without the files and timings, which add_files fills in at the end.
Json simplify_summary(const SimplifyOptions& options, const MoeModel& model,
                      const SimplifyResult& result, const fs::path& cache_dir, bool need_nmi) {
    const auto& layers = model.layers();
    Json summary;
    summary[kSummaryMarker] = 1;
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

// Tokenizer and generation files of a Hugging Face folder go along, so the output is a
// complete model.
void copy_extra_files(const MoeModel& model, const fs::path& staging) {
    for (const auto& entry : fs::directory_iterator(model.tensors().dir())) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_regular_file() || is_weight_file(name) || name == "config.json" ||
            name == "summary.json") {
            continue;
        }
        fs::copy_file(entry.path(), staging / name);
    }
}

void log_outcome(const SimplifyOptions& options, const SimplifyResult& result, size_t files) {
    emit(options, fmt::format("{:>6} {:>8} {:>6} {:>6}  {}", "layer", "experts", "kept", "top-k",
                              "kept experts (original numbers)"));
    std::string stopped;
    for (const auto& o : result.layers) {
        emit(options, fmt::format("{:>6} {:>8} {:>6} {:>6}  {}{}", o.layer, o.n_experts,
                                  o.kept.size(), o.top_k, join(o.kept),
                                  o.stopped_at_min_keep ? "  (stopped at top-k)" : ""));
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

}  // namespace

SimplifyResult simplify_model(const SimplifyOptions& options) {
    const auto t_start = Clock::now();
    check_simplify_options(options);
    const MoeModel model = MoeModel::open(options.model, options.kind_weights);
    const auto& layers = model.layers();
    check_keep_fits(options, model);
    check_input_tensors(model);
    const fs::path cache_dir = options.nmi_cache.empty() ? options.out / "nmi" : options.nmi_cache;
    check_model_output(options.out, model.tensors().source(), options.overwrite, {"nmi"});
    if (options.overwrite) check_overwrite_target(options.out);
    log_model(options, model);

    std::map<int, std::vector<int64_t>> frequency;
    if (options.criterion == Criterion::Frequency) {
        usage_check(
            model.architecture() == "greenmoe",
            "--criterion frequency runs the model on calibration tokens, which greenmoe can "
            "do for its own checkpoints only ({} is {})",
            options.model.string(), model.architecture());
        frequency = routing_counts(options);
    }

    SimplifyResult result;
    result.architecture = model.architecture();
    result.skipped = model.skipped();
    // The NMI matrices, unless a baseline with a fixed count does not need them.
    const bool need_nmi = options.criterion == Criterion::Nmi || !options.keep.has_value();
    std::vector<std::vector<double>> Ms;
    std::vector<bool> reused(layers.size(), false);
    if (need_nmi) {
        Ms = layer_similarities(model, cache_dir, options.show_progress, options.memory_budget,
                                &reused);
        for (const bool r : reused) (r ? result.nmi_layers_reused : result.nmi_layers_computed)++;
        emit(options,
             fmt::format("similarity: {} layers computed, {} reused from {}",
                         result.nmi_layers_computed, result.nmi_layers_reused, cache_dir.string()));
    }
    const double nmi_seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
    if (options.reduce_percent) {
        std::vector<int> counts;
        // One min_keep for the searched factor: the largest top-k of any layer.
        int min_keep = 1;
        for (const auto& l : layers) {
            counts.push_back(l.n_experts);
            min_keep = std::max(min_keep, l.top_k);
        }
        result.factor = factor_for_reduction(Ms, counts, *options.reduce_percent / 100.0, min_keep);
        emit(options,
             fmt::format("--reduce {}%: factor {}", *options.reduce_percent, *result.factor));
    } else if (options.factor) {
        result.factor = options.factor;
    }

    result.layers = choose_experts(options, model, Ms, reused, frequency, result.factor);
    std::vector<std::vector<int>> kept;
    for (const LayerOutcome& o : result.layers) {
        kept.push_back(o.kept);
        result.expert_params_before += o.expert_params_before;
        result.expert_params_after += o.expert_params_after;
    }
    PrunedOutput out = pruned_output(options, model, kept);
    check_output_tensors(options, model, out);
    result.params_before = model.tensors().total_parameters();
    if (const TensorInfo* t = model.tensors().find(kMoeBiasTensor)) {
        result.params_before -= t->numel();  // routing state, not a parameter
    }
    for (const auto& t : out.tensors) {
        if (t.name == kMoeBiasTensor) continue;
        int64_t n = 1;
        for (const int64_t d : t.shape) n *= d;
        result.params_after += n;
    }

    Json summary = simplify_summary(options, model, result, cache_dir, need_nmi);
    const Json identity = need_nmi ? model_identity(model) : Json();
    const bool copy_extras = fs::is_directory(options.model) && !model.is_greenmoe();
    out.write.add_files = [&](const fs::path& staging) {
        if (copy_extras) copy_extra_files(model, staging);
        for (size_t i = 0; i < Ms.size(); ++i) {
            write_cached(staging / "nmi", layers[i], cache_key(model, layers[i], identity), Ms[i]);
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
            {"similarity", nmi_seconds},
            {"total", std::chrono::duration<double>(Clock::now() - t_start).count()}};
        write_file_atomic(staging / "summary.json", summary.dump(2) + "\n");
    };
    const ModelFolderWritten written = write_model_folder(options.out, out.tensors, out.write);
    result.files = written.files;
    result.summary = summary;
    log_outcome(options, result, written.files.size());
    return result;
}

}  // namespace greenmoe::moeits

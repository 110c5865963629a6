// The MoEITS similarity matrices of a model's layers, cached as .npy files beside a key that
// ties each to the model files, so a model simplified again at another target reuses them.
#include "greenmoe/moeits/nmi_cache.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/core/sha256.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/npy.h"
#include "greenmoe/moeits/nmi.h"

namespace greenmoe::moeits {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr const char* kCacheFormat = "greenmoe-moeits-nmi/1";

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

}  // namespace

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

void write_nmi_cache(const fs::path& dir, const MoeLayer& layer, const Json& key,
                     const std::vector<double>& M) {
    fs::create_directories(dir);
    const int64_t E = layer.n_experts;
    // The matrix first: a key is only ever beside the matrix it describes.
    write_npy(npy_path(dir, layer.layer), M.data(), {E, E});
    write_file_atomic(key_path(dir, layer.layer), key.dump(2) + "\n");
}

Json nmi_cache_key(const MoeModel& model, const MoeLayer& layer, const Json& identity) {
    return {{"format", kCacheFormat},
            {"model", identity},
            {"architecture", model.architecture()},
            {"layer", layer.layer},
            {"n_experts", layer.n_experts},
            {"kinds", layer.kind_names},
            {"kind_weights", layer.kind_weights}};
}

Json nmi_cache_key(const MoeModel& model, const MoeLayer& layer) {
    return nmi_cache_key(model, layer, model_identity(model));
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
        Json key = nmi_cache_key(model, layers[i], identity);
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
        if (!cache_dir.empty()) write_nmi_cache(cache_dir, layer, keys[i], Ms[i]);
    }
    if (bar) bar->finish();
    if (reused != nullptr) *reused = from_cache;
    return Ms;
}

}  // namespace greenmoe::moeits

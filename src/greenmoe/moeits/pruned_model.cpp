// The pruned model: its tensors (kept experts renumbered, router rows sliced), its config
// and the options it is written with, in the input's layout (spec §4).
#include "greenmoe/moeits/pruned_model.h"

#include <algorithm>
#include <map>
#include <span>
#include <unordered_map>

#include "greenmoe/core/error.h"
#include "greenmoe/model/gpt_config.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/moeits/config_check.h"

namespace greenmoe::moeits {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr const char* kGreenmoeConfigKey = "greenmoe.model";
constexpr const char* kGreenmoeMoeitsKey = "greenmoe.moeits";

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

}  // namespace

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

PrunedOutput pruned_output(const MoeModel& model, const std::vector<std::vector<int>>& kept,
                           const PrunedWriteOptions& options) {
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
void check_output_tensors(const MoeModel& model, const PrunedOutput& out, const fs::path& out_dir) {
    const std::string where = out_dir.string() + " (about to be written)";
    const std::vector<TensorInfo> written = output_tensor_list(out.tensors);
    if (model.is_greenmoe()) {
        check_greenmoe_tensors(written, out.config, where);
    } else {
        check_hf_tensors(written, out.config, where);
    }
}

// Tokenizer and generation files of a Hugging Face folder go along, so the output is a
// complete model.
void copy_extra_files(const MoeModel& model, const fs::path& staging) {
    for (const auto& entry : fs::directory_iterator(model.tensors().dir())) {
        const std::string name = entry.path().filename().string();
        // Weights in any format would still hold every expert: never copied beside.
        if (!entry.is_regular_file() || is_weight_file_name(name) || name == "config.json" ||
            name == "summary.json") {
            continue;
        }
        fs::copy_file(entry.path(), staging / name);
    }
}

}  // namespace greenmoe::moeits

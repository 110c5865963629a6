// The forward pass of a Hugging Face decoder-only LM (see hf_model.h): embeddings, pre-norm
// blocks of attention and (sparse) MLP, final norm, LM head.
#include "greenmoe/hf/hf_model.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/hf/attention.h"
#include "greenmoe/hf/lora_merge.h"
#include "greenmoe/hf/mla_attention.h"
#include "greenmoe/hf/moe_block.h"
#include "greenmoe/hf/ops.h"

namespace greenmoe::hf {

HfModel::HfModel(ModelConfig config, std::unique_ptr<SafetensorsModel> tensors)
    : config_(std::move(config)),
      tensors_(std::move(tensors)),
      weights_(load_weights(*tensors_, config_)),
      rope_(config_.rope) {}

HfModel HfModel::load(const std::filesystem::path& dir) {
    HfModel model = load(dir / "config.json", dir);
    // generate() stops where transformers' generation config says.
    const auto generation = dir / "generation_config.json";
    if (std::filesystem::exists(generation)) {
        std::ifstream in(generation);
        const auto j = nlohmann::json::parse(in, nullptr, false);
        check(!j.is_discarded() && j.is_object(), "{}: not a JSON object", generation.string());
        if (j.contains("eos_token_id")) {
            model.config_.eos_token_ids = read_eos_token_ids(j, generation);
        }
    }
    return model;
}

HfModel HfModel::load_with_adapter(const std::filesystem::path& dir,
                                   const std::filesystem::path& adapter) {
    HfModel model = load(dir);
    if (!adapter.empty()) model.apply_lora(read_lora_adapter(adapter));
    return model;
}

HfModel HfModel::load(const std::filesystem::path& config_json,
                      const std::filesystem::path& weights) {
    ModelConfig config = read_model_config(config_json);
    auto tensors = std::make_unique<SafetensorsModel>(SafetensorsModel::open(weights));
    return HfModel(std::move(config), std::move(tensors));
}

void HfModel::apply_lora(const LoraAdapter& adapter) {
    for (const LoraModule& module : adapter.modules) {
        const Mat base = find_lora_target(weights_, adapter, module);
        merged_.push_back(merged_matrix(base, module));
        const auto* merged = reinterpret_cast<const std::byte*>(merged_.back().data());
        // Every view of the tensor moves to the merged copy at the same element offset (row
        // slices such as Granite's halves of input_linear, a tied LM head).
        const size_t elem = dtype_size(base.dtype);
        const std::byte* begin = base.data;
        const std::byte* end = begin + static_cast<size_t>(base.rows * base.cols) * elem;
        auto move_view = [&](Mat& m) {
            if (m.data < begin || m.data >= end || m.dtype != base.dtype) return;
            const size_t offset = static_cast<size_t>(m.data - begin) / elem;
            m = Mat{merged + offset * sizeof(float), DType::F32, m.rows, m.cols};
        };
        for_each_matrix(weights_, move_view);
        for (auto& [name, m] : weights_.named) move_view(m);
    }
}

std::vector<float> HfModel::forward(std::span<const int32_t> ids, KvCache& cache) const {
    return std::move(forward_batch({ids}, {&cache}).front());
}

std::vector<std::vector<float>> HfModel::forward_batch(
    const std::vector<std::span<const int32_t>>& ids, const std::vector<KvCache*>& caches,
    LogitRows rows) const {
    const ModelConfig& c = config_;
    const int64_t hidden = c.hidden_size;
    check(ids.size() == caches.size(), "forward_batch: {} sequences but {} caches", ids.size(),
          caches.size());
    int64_t n = 0;
    for (size_t s = 0; s < ids.size(); ++s) {
        KvCache& cache = *caches[s];
        if (cache.layers.empty()) cache.layers.resize(static_cast<size_t>(c.num_layers));
        check(cache.layers.size() == static_cast<size_t>(c.num_layers),
              "KV cache has {} layers, the model {}", cache.layers.size(), c.num_layers);
        n += static_cast<int64_t>(ids[s].size());
    }

    std::vector<float> h(static_cast<size_t>(n * hidden));
    int64_t row = 0;
    for (const auto& seq : ids) {
        for (size_t i = 0; i < seq.size(); ++i, ++row) {
            const int32_t id = seq[i];
            check(id >= 0 && id < c.vocab_size,
                  "token id {} at position {} is outside the vocabulary (0..{}) of {}", id, i,
                  c.vocab_size - 1, c.source.string());
            weights_.embed.read_row(id, h.data() + row * hidden);
        }
    }
    if (c.embedding_multiplier != 1.0) {
        for (float& v : h) v *= static_cast<float>(c.embedding_multiplier);
    }
    const auto residual = static_cast<float>(c.residual_multiplier);
    std::vector<float> a(h.size()), out(h.size());
    std::vector<Segment> segments(ids.size());
    for (int l = 0; l < c.num_layers; ++l) {
        const LayerWeights& w = weights_.layers[static_cast<size_t>(l)];
        const LayerConfig& lc = c.layers[static_cast<size_t>(l)];
        int64_t begin = 0;
        for (size_t s = 0; s < ids.size(); ++s) {
            const auto count = static_cast<int64_t>(ids[s].size());
            segments[s] = Segment{begin, count, &caches[s]->layers[static_cast<size_t>(l)]};
            begin += count;
        }
        std::copy(h.begin(), h.end(), a.begin());
        rms_norm(a.data(), n, hidden, hidden, w.input_norm, c.rms_norm_eps);
        if (c.attention == AttentionKind::Latent) {
            latent_attention(c, w.attention, rope_, a.data(), n, segments, out.data());
        } else {
            standard_attention(c, w.attention, rope_, lc.sliding_window, a.data(), n, segments,
                               out.data());
        }
        for (size_t i = 0; i < h.size(); ++i) h[i] += out[i] * residual;
        std::copy(h.begin(), h.end(), a.begin());
        rms_norm(a.data(), n, hidden, hidden, w.post_norm, c.rms_norm_eps);
        if (lc.n_experts > 0) {
            static const std::vector<bool> kNone;
            const auto& mask =
                static_cast<size_t>(l) < masked_.size() ? masked_[static_cast<size_t>(l)] : kNone;
            moe_block(c, w.moe, a.data(), n, out.data(), mask, observer_, l);
        } else {
            gated_mlp(w.mlp, a.data(), n, out.data());
        }
        for (size_t i = 0; i < h.size(); ++i) h[i] += out[i] * residual;
    }
    // Only the rows whose logits are wanted go through the final norm and the LM head: for a
    // long prompt the head (hidden × vocabulary per row) can cost as much as the layers.
    int64_t out_rows = n;
    if (rows == LogitRows::Last) {
        int64_t end = 0;
        out_rows = 0;
        for (const auto& seq : ids) {
            end += static_cast<int64_t>(seq.size());
            if (seq.empty()) continue;
            std::copy_n(h.begin() + (end - 1) * hidden, hidden, h.begin() + out_rows * hidden);
            ++out_rows;
        }
    }
    rms_norm(h.data(), out_rows, hidden, hidden, weights_.final_norm, c.rms_norm_eps);
    std::vector<float> logits(static_cast<size_t>(out_rows * c.vocab_size));
    linear(h.data(), out_rows, weights_.lm_head, logits.data());
    if (c.logits_scaling != 1.0) {
        for (float& v : logits) v /= static_cast<float>(c.logits_scaling);
    }
    std::vector<std::vector<float>> result;
    auto at = logits.begin();
    for (const auto& seq : ids) {
        const int64_t kept = rows == LogitRows::Last ? std::min<int64_t>(1, int64_t(seq.size()))
                                                     : static_cast<int64_t>(seq.size());
        const auto size = static_cast<ptrdiff_t>(kept) * c.vocab_size;
        result.emplace_back(at, at + size);
        at += size;
    }
    return result;
}

std::vector<float> HfModel::logits(std::span<const int32_t> ids) const {
    KvCache cache;
    return forward(ids, cache);
}

}  // namespace greenmoe::hf

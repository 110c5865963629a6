// Hugging Face decoding through the engine's caches (see hf_decode_batch.h).
#include "greenmoe/eval/hf_decode_batch.h"

#include <algorithm>
#include <span>

#include "greenmoe/core/error.h"
#include "greenmoe/hf/kv_cache.h"

namespace greenmoe {

namespace {

class HfDecodeBatch : public DecodeBatch {
  public:
    HfDecodeBatch(const hf::HfModel& model, int batch, int max_len)
        : model_(model),
          max_len_(max_len),
          caches_(size_t(batch)),
          logits_(size_t(batch) * size_t(model.config().vocab_size)) {}

    // The sequences with new tokens go through the engine together.
    const std::vector<float>& step(const std::vector<std::vector<int32_t>>& ids) override {
        check(ids.size() <= caches_.size(), "decode: {} sequences in a batch of {}", ids.size(),
              caches_.size());
        std::vector<std::span<const int32_t>> spans;
        std::vector<hf::KvCache*> caches;
        std::vector<size_t> which;
        for (size_t s = 0; s < ids.size(); ++s) {
            if (ids[s].empty()) continue;
            check(caches_[s].length() + int64_t(ids[s].size()) <= max_len_,
                  "decode: sequence {} would hold {} positions, more than the {} allocated", s,
                  caches_[s].length() + int64_t(ids[s].size()), max_len_);
            spans.emplace_back(ids[s]);
            caches.push_back(&caches_[s]);
            which.push_back(s);
        }
        if (spans.empty()) return logits_;
        const auto out = model_.forward_batch(spans, caches, hf::HfModel::LogitRows::Last);
        const size_t vocab = size_t(model_.config().vocab_size);
        for (size_t i = 0; i < which.size(); ++i) {
            std::copy_n(out[i].begin(), vocab,
                        logits_.begin() + ptrdiff_t(which[i] * vocab));
        }
        return logits_;
    }
    int length(int s) const override { return int(caches_.at(size_t(s)).length()); }

  private:
    const hf::HfModel& model_;
    int max_len_;
    std::vector<hf::KvCache> caches_;
    std::vector<float> logits_;
};

}  // namespace

std::unique_ptr<DecodeBatch> hf_decode_batch(const hf::HfModel& model, int batch, int max_len) {
    check(batch >= 1 && max_len >= 1, "decode: {} sequences of up to {} positions", batch, max_len);
    return std::make_unique<HfDecodeBatch>(model, batch, max_len);
}

}  // namespace greenmoe

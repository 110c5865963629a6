// The key/value-cached decoding that generation and the inference benchmark drive, for any
// model: a greenmoe GPT (language_model.cpp) or a Hugging Face model (hf_decode_batch.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace greenmoe {

// Sequences decoded together with a key/value cache: each step appends new tokens to some
// of them and gives the next-token logits of each one's last position.
class DecodeBatch {
  public:
    virtual ~DecodeBatch() = default;
    // ids[s] (empty: sequence s sits this step out) continue sequence s; together at most
    // max_len positions per sequence. Returns logits [batch, vocabulary]: row s is the
    // prediction after sequence s's last token (unchanged for a sequence that sat out).
    virtual const std::vector<float>& step(const std::vector<std::vector<int32_t>>& ids) = 0;
    // Positions sequence s holds.
    virtual int length(int s) const = 0;
};

// Opens `batch` sequences of up to `max_len` positions.
using DecoderFactory = std::function<std::unique_ptr<DecodeBatch>(int batch, int max_len)>;

}  // namespace greenmoe

// Validation loss over a fixed set of sequences, the same whatever batch size scores it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "greenmoe/io/token_shard.h"
#include "greenmoe/model/gpt.h"

namespace greenmoe {

// The fixed validation set: consecutive windows of T+1 tokens (stride T) from the start
// of each shard in order, until max_tokens targets are taken.
class ValidationSet {
  public:
    ValidationSet(const std::string& pattern, int T, int64_t max_tokens);
    size_t num_sequences() const { return starts_.size(); }
    int seq_len() const { return T_; }
    int64_t num_tokens() const { return static_cast<int64_t>(starts_.size()) * T_; }
    // Copies sequence i into inputs[T] / targets[T].
    void sequence(size_t i, int* inputs, int* targets) const;

  private:
    std::vector<TokenShard> shards_;
    std::vector<std::pair<size_t, size_t>> starts_;  // (shard, offset)
    int T_;
};

// Mean per-token loss over the whole set, scored model.max_batch() sequences at a time
// (the last batch may be smaller). Per-sequence losses are summed in double in sequence
// order and routed without capacity limits, so the batch size does not change the result.
double validation_loss(GptModel& model, const ValidationSet& set);
// The summed loss of sequences [first, end) only, for ranks that split the set: the sum
// over ranks divided by set.num_tokens() is the validation loss.
double validation_loss_sum(GptModel& model, const ValidationSet& set, size_t first, size_t end);

}  // namespace greenmoe

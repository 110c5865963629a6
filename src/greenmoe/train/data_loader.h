// Streams training batches from token shards the way llm.c / build-nanogpt do: windows
// of B·T+1 tokens, rank r taking the r-th window of each step, shards in order, and a
// position that a checkpoint can store and restore exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "greenmoe/io/token_shard.h"

namespace greenmoe {

struct DataPosition {
    size_t shard = 0;
    size_t offset = 0;   // token index of this rank's next window in that shard
    uint64_t epoch = 0;  // completed passes over all shards
};

class DataLoader {
  public:
    // pattern: see list_token_shards. Every shard must hold at least B·T·world + 1
    // tokens (checked at open, naming the shard).
    DataLoader(const std::string& pattern, int B, int T, int rank = 0, int world = 1);

    // Fills inputs[B·T] and targets[B·T] (the same window shifted by one) and advances.
    void next_batch(int* inputs, int* targets);

    DataPosition position() const { return pos_; }
    void set_position(const DataPosition& pos);  // throws Error if out of range
    void reset() { pos_ = DataPosition{0, window_start(), 0}; }

    size_t num_shards() const { return shards_.size(); }
    size_t total_tokens() const;
    const TokenShard& shard(size_t i) const { return shards_[i]; }

  private:
    size_t window_start() const { return static_cast<size_t>(B_) * T_ * rank_; }

    std::vector<TokenShard> shards_;
    int B_, T_, rank_, world_;
    DataPosition pos_;
};

}  // namespace greenmoe

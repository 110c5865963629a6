// Streams training batches from token shards the way llm.c / build-nanogpt do: windows
// of B·T+1 tokens, shards in order, rank r of N taking the r-th of every N windows, and a
// position that a checkpoint can store and restore exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "greenmoe/io/token_shard.h"

namespace greenmoe {

// The next window of the whole job, the same on every rank between calls: it does not
// depend on the number of ranks, so a run can resume on another rank count.
struct DataPosition {
    size_t shard = 0;
    size_t offset = 0;   // token index of the next window in that shard
    uint64_t epoch = 0;  // completed passes over all shards
};

class DataLoader {
  public:
    // pattern: see list_token_shards. Every shard must hold at least B·T + 1 tokens
    // (checked at open, naming the shard).
    DataLoader(const std::string& pattern, int B, int T, int rank = 0, int world = 1);

    // Fills inputs[B·T] and targets[B·T] (this rank's window shifted by one) and advances
    // past all ranks' windows. The windows follow one another exactly as one process
    // reading them all would take them (a window that does not fit moves to the next
    // shard), so N ranks with A micro-steps see the tokens of one process with N·A.
    void next_batch(int* inputs, int* targets);

    DataPosition position() const { return pos_; }
    void set_position(const DataPosition& pos);  // throws Error if out of range
    void reset() { pos_ = DataPosition{}; }

    size_t num_shards() const { return shards_.size(); }
    size_t total_tokens() const;
    const TokenShard& shard(size_t i) const { return shards_[i]; }

  private:
    void advance();  // past one window

    std::vector<TokenShard> shards_;
    int B_, T_, rank_, world_;
    DataPosition pos_;
};

}  // namespace greenmoe

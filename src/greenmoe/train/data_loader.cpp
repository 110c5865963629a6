// DataLoader (see data_loader.h).
#include "greenmoe/train/data_loader.h"

#include "greenmoe/core/error.h"

namespace greenmoe {

DataLoader::DataLoader(const std::string& pattern, int B, int T, int rank, int world)
    : B_(B), T_(T), rank_(rank), world_(world) {
    check(B >= 1 && T >= 1 && world >= 1 && rank >= 0 && rank < world,
          "data loader: invalid batch {}×{} for rank {} of {}", B, T, rank, world);
    const size_t need = static_cast<size_t>(B) * T + 1;
    for (const auto& path : list_token_shards(pattern)) {
        TokenShard shard = TokenShard::open(path);
        check(shard.size() >= need,
              "{}: shard holds {} tokens, fewer than one batch (B·T + 1 = {})", path.string(),
              shard.size(), need);
        shards_.push_back(std::move(shard));
    }
    reset();
}

void DataLoader::advance() {
    const size_t n = static_cast<size_t>(B_) * T_;
    pos_.offset += n;
    // Move to the next shard when the next window would not fit, as build-nanogpt does.
    if (pos_.offset + n + 1 > shards_[pos_.shard].size()) {
        pos_.shard += 1;
        if (pos_.shard == shards_.size()) {
            pos_.shard = 0;
            pos_.epoch += 1;
        }
        pos_.offset = 0;
    }
}

void DataLoader::next_batch(int* inputs, int* targets) {
    const size_t n = static_cast<size_t>(B_) * T_;
    for (int r = 0; r < world_; ++r) {
        if (r == rank_) {
            const uint16_t* tokens = shards_[pos_.shard].tokens() + pos_.offset;
            for (size_t i = 0; i < n; ++i) {
                inputs[i] = tokens[i];
                targets[i] = tokens[i + 1];
            }
        }
        advance();
    }
}

void DataLoader::set_position(const DataPosition& pos) {
    check(pos.shard < shards_.size(), "data position: shard {} but only {} shards", pos.shard,
          shards_.size());
    check(pos.offset + static_cast<size_t>(B_) * T_ + 1 <= shards_[pos.shard].size(),
          "data position: offset {} is past the end of {} ({} tokens)", pos.offset,
          shards_[pos.shard].path().string(), shards_[pos.shard].size());
    pos_ = pos;
}

size_t DataLoader::total_tokens() const {
    size_t n = 0;
    for (const auto& s : shards_) n += s.size();
    return n;
}

}  // namespace greenmoe

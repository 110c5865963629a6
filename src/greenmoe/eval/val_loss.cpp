// ValidationSet and validation_loss (see val_loss.h).
#include "greenmoe/eval/val_loss.h"

#include "greenmoe/core/error.h"

namespace greenmoe {

ValidationSet::ValidationSet(const std::string& pattern, int T, int64_t max_tokens) : T_(T) {
    for (const auto& path : list_token_shards(pattern)) shards_.push_back(TokenShard::open(path));
    int64_t taken = 0;
    for (size_t s = 0; s < shards_.size() && taken < max_tokens; ++s) {
        for (size_t off = 0; off + T + 1 <= shards_[s].size() && taken < max_tokens; off += T) {
            starts_.emplace_back(s, off);
            taken += T;
        }
    }
    check(!starts_.empty(), "{}: validation data holds fewer than T+1 = {} tokens", pattern, T + 1);
}

void ValidationSet::sequence(size_t i, int* inputs, int* targets) const {
    const auto [s, off] = starts_[i];
    const uint16_t* tokens = shards_[s].tokens() + off;
    for (int t = 0; t < T_; ++t) {
        inputs[t] = tokens[t];
        targets[t] = tokens[t + 1];
    }
}

double validation_loss_sum(GptModel& model, const ValidationSet& set, size_t first_seq,
                           size_t end_seq) {
    const int T = set.seq_len();
    check(T <= model.max_seq(), "validation sequence length {} exceeds the model's {}", T,
          model.max_seq());
    check(first_seq <= end_seq && end_seq <= set.num_sequences(),
          "validation sequences [{}, {}) of {}", first_seq, end_seq, set.num_sequences());
    const size_t batch = static_cast<size_t>(model.max_batch());
    std::vector<int> inputs(batch * T), targets(batch * T);
    // Capacity limits depend on the batch: without them each sequence's loss is its own.
    model.set_capacity_limits(false);
    double sum = 0.0;
    for (size_t first = first_seq; first < end_seq; first += batch) {
        const size_t n = std::min(batch, end_seq - first);
        for (size_t i = 0; i < n; ++i) {
            set.sequence(first + i, inputs.data() + i * T, targets.data() + i * T);
        }
        model.forward(inputs.data(), targets.data(), static_cast<int>(n), T);
        const float* losses = model.losses();
        for (size_t i = 0; i < n * T; ++i) sum += losses[i];
    }
    model.set_capacity_limits(true);
    return sum;
}

double validation_loss(GptModel& model, const ValidationSet& set) {
    return validation_loss_sum(model, set, 0, set.num_sequences()) /
           static_cast<double>(set.num_tokens());
}

}  // namespace greenmoe

// Incremental inference over a GptModel's weights with a key/value cache: each call runs only
// the new positions of each sequence and attends to the cached keys and values of the earlier
// ones, so generating N tokens costs N single-position steps instead of N growing prefixes.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "greenmoe/core/aligned_buffer.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/moe_mlp.h"
#include "greenmoe/model/moe_router.h"

namespace greenmoe {

class GptInference {
  public:
    // Which logits a forward computes: none (filling the cache only), the last new position
    // of each sequence, or every new position.
    enum class Logits { None, Last, All };

    // A cache of `max_batch` slots (sequences) of up to `max_len` positions (≤ block_size),
    // and buffers for up to `max_tokens` new positions per call, over all sequences. The
    // model must outlive this object; its weights are read, never changed.
    GptInference(const GptModel& model, int max_batch, int max_len, int max_tokens);
    ~GptInference();

    // About how many bytes those buffers take (the cache and one call's activations), to
    // refuse a size that cannot fit before allocating it.
    static double memory_bytes(const GptConfig& config, int max_batch, int max_len, int max_tokens);

    // Runs B sequences packed one after another in tokens: sequence i has count[i] ≥ 1
    // tokens for positions start[i] .. start[i] + count[i] − 1 of cache slot slot[i] (slots
    // distinct), attending to the slot's positions 0 .. start[i] − 1, which earlier calls
    // must have filled, and causally to its own new ones. Routing is the evaluation-mode
    // routing without capacity limits, so a sequence's result does not depend on the
    // others. Returns the logits [B, Vp] of each sequence's last position (Last), or
    // [Σ count, Vp] in token order (All); null for None.
    const float* forward(const int* tokens, const int* slot, const int* start, const int* count,
                         int B, Logits logits);

    // Called after every routed MLP of later forwards with its block, the MLP (its last
    // forward's routing and expert rows), its input [N, C] and N. Empty (the default): none.
    using MoeObserver = std::function<void(int layer, const MoeMlp& moe, const float* x, int N)>;
    void set_moe_observer(MoeObserver observer) { moe_observer_ = std::move(observer); }

    // Copies positions [0, len) of slot src's cache to slot dst (a shared prefix).
    void copy_prefix(int src, int dst, int len);

    int max_batch() const { return max_batch_; }
    int max_len() const { return max_len_; }
    int max_tokens() const { return max_tokens_; }

  private:
    // Attention of `choices` query rows per new token (row (n, j) at
    // q + (n·choices + j)·q_stride) against the layer's cache, heads into atty_.
    void attention(int layer, const float* q, int q_stride, int N, int choices);
    void moa_attention(int layer, float* y, const float* x, int N);
    void store_kv(int layer, const float* kv, int stride, int N);

    const GptModel& model_;
    const GptConfig& config_;
    int max_batch_, max_len_, max_tokens_;
    std::vector<int> row_slot_, row_pos_;  // per new token of the current call
    int C_, NH_, hs_;
    // Keys and values per layer: [max_batch, max_len, 2C], keys in [0, C), values in [C, 2C).
    std::vector<AlignedBuffer> kv_cache_;
    // Activations of one call: [max_batch · max_new, ·].
    AlignedBuffer residual_, ln_, mean_, rstd_, qkv_, atty_, sub_out_, fch_, logits_, last_;
    // One MoeMlp per distinct expert count (pruned blocks differ), shared by the routed MLPs
    // of that count (no state across calls); moe_of_layer_ points each block at its own.
    std::vector<std::unique_ptr<MoeMlp>> moe_;
    std::vector<MoeMlp*> moe_of_layer_;
    MoeObserver moe_observer_;
    std::unique_ptr<MoeRouter> router_;  // shared by every MoA attention
    AlignedBuffer moa_q_, moa_out_;      // [N·K, C]
};

}  // namespace greenmoe

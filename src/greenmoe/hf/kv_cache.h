// Keys and values of the positions a sequence has seen, per layer, for incremental decoding.
#pragma once

#include <cstdint>
#include <vector>

namespace greenmoe::hf {

struct LayerCache {
    int64_t heads = 0, k_dim = 0, v_dim = 0;
    std::vector<float> k, v;  // [positions, heads, k_dim], [positions, heads, v_dim]
    // Multi-head latent attention keeps only what its keys and values are made from:
    // [positions, latent_dim] = the normalized compressed kv and the roped shared key, 1/9
    // of the expanded keys and values at DeepSeek-V2-Lite's sizes. k and v stay empty.
    int64_t latent_dim = 0;
    std::vector<float> latent;
    int64_t length() const {
        if (latent_dim > 0) return int64_t(latent.size()) / latent_dim;
        return heads * k_dim == 0 ? 0 : int64_t(k.size()) / (heads * k_dim);
    }
};

struct KvCache {
    std::vector<LayerCache> layers;
    // Positions already computed (the next token's position).
    int64_t length() const { return layers.empty() ? 0 : layers.front().length(); }
};

}  // namespace greenmoe::hf

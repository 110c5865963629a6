// Keys and values of the positions a sequence has seen, per layer, for incremental decoding.
#pragma once

#include <cstdint>
#include <vector>

namespace greenmoe::hf {

struct LayerCache {
    int64_t heads = 0, k_dim = 0, v_dim = 0;
    std::vector<float> k, v;  // [positions, heads, k_dim], [positions, heads, v_dim]
    int64_t length() const { return heads * k_dim == 0 ? 0 : int64_t(k.size()) / (heads * k_dim); }
};

struct KvCache {
    std::vector<LayerCache> layers;
    // Positions already computed (the next token's position).
    int64_t length() const { return layers.empty() ? 0 : layers.front().length(); }
};

}  // namespace greenmoe::hf

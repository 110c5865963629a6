// DeepSeek's multi-head latent attention: low-rank q (or q_proj), a compressed kv with one
// shared rope key, expanded per head by kv_b_proj.
#pragma once

#include <cstdint>

#include "greenmoe/hf/hf_config.h"
#include "greenmoe/hf/hf_weights.h"
#include "greenmoe/hf/kv_cache.h"
#include "greenmoe/hf/rope.h"

namespace greenmoe::hf {

// x [n, hidden] (normalized) at positions cache.length() … → out [n, hidden]; appends the
// expanded keys [heads, nope + rope] and values [heads, v_head_dim] to the cache.
void latent_attention(const ModelConfig& config, const AttentionWeights& w, const Rope& rope,
                      const float* x, int64_t n, LayerCache& cache, float* out);

}  // namespace greenmoe::hf

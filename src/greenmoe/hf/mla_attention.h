// DeepSeek's multi-head latent attention: low-rank q (or q_proj), a compressed kv with one
// shared rope key, expanded per head by kv_b_proj.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/hf/attention.h"
#include "greenmoe/hf/hf_config.h"
#include "greenmoe/hf/hf_weights.h"
#include "greenmoe/hf/kv_cache.h"
#include "greenmoe/hf/rope.h"

namespace greenmoe::hf {

// x [rows, hidden] (normalized), the rows of every segment → out [rows, hidden]; appends the
// expanded keys [heads, nope + rope] and values [heads, v_head_dim] to each segment's cache.
void latent_attention(const ModelConfig& config, const AttentionWeights& w, const Rope& rope,
                      const float* x, int64_t rows, const std::vector<Segment>& segments,
                      float* out);

}  // namespace greenmoe::hf

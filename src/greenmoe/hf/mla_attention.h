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

// x [rows, hidden] (normalized), the rows of every segment → out [rows, hidden]; appends each
// position's latent row (normalized compressed kv, roped shared key) to its segment's cache.
// Many new positions at once expand the cached rows to keys and values through kv_b_proj;
// few (decoding) attend in the latent space with kv_b_proj absorbed into query and output.
void latent_attention(const ModelConfig& config, const AttentionWeights& w, const Rope& rope,
                      const float* x, int64_t rows, const std::vector<Segment>& segments,
                      float* out);

}  // namespace greenmoe::hf

// The tokens `eval --task perplexity` scores: a token shard as it is, or a text file encoded
// with the model's tokenizer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "greenmoe/text/hf_tokenizer.h"

namespace greenmoe {

// An llm.c .bin or .npy token shard (recognised by its header) gives its tokens; any other
// file is UTF-8 text, encoded whole with the tokenizer's special tokens (its BOS, if any).
// Throws Error naming the file when it cannot be read.
std::vector<int32_t> read_perplexity_tokens(const std::filesystem::path& file,
                                            const hf::Tokenizer& tokenizer);

}  // namespace greenmoe

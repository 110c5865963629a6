// Where the GPT-2 BPE files (encoder.json, vocab.bpe) are found on this machine.
#pragma once

#include <filesystem>
#include <string>

namespace greenmoe {

// Search order: `option` (a --tokenizer value) if non-empty, $GREENMOE_TOKENIZER,
// $GREENMOE_DATA/gpt2-bpe, $XDG_CACHE_HOME/greenmoe/gpt2-bpe, ~/.cache/greenmoe/gpt2-bpe
// (where scripts/setup.sh puts OpenAI's files after checking their SHA-256).
// Throws Error listing the places tried when none holds both files.
std::filesystem::path find_tokenizer_dir(const std::string& option);

// True when `path` is a Hugging Face tokenizer: a tokenizer.json file, or a folder holding one.
bool is_hf_tokenizer_path(const std::filesystem::path& path);

}  // namespace greenmoe

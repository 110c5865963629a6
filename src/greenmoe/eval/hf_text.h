// What the text tasks need to know about a Hugging Face model beyond its weights: whether a
// folder is one the engine runs, and the special tokens a scored text starts with.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "greenmoe/hf/hf_model.h"
#include "greenmoe/text/hf_tokenizer.h"

namespace greenmoe {

// A folder with a config.json whose model_type the Hugging Face engine runs (GPT-2 folders
// are greenmoe models: false).
bool is_hf_engine_model(const std::filesystem::path& path);

// {bos} when the tokenizer puts its BOS in front of an encoded text (its post-processor, or
// tokenizer_config.json's add_bos_token), else nothing: what lm-evaluation-harness prepends.
std::vector<int32_t> bos_prefix(const hf::Tokenizer& tokenizer);

// The token an empty context starts from (the harness's prefix_token_id): the BOS, else the
// tokenizer's EOS, else the model's first eos_token_id. Throws Error when there is none.
int32_t empty_context_token(const hf::HfModel& model, const hf::Tokenizer& tokenizer);

}  // namespace greenmoe

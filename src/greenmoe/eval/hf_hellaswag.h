// HellaSwag in both published styles for a Hugging Face model, with its own tokenizer, scored
// through the engine's continuation log-likelihood (each context computed once).
#pragma once

#include <vector>

#include "greenmoe/eval/hellaswag.h"
#include "greenmoe/eval/hellaswag_data.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/text/hf_tokenizer.h"

namespace greenmoe {

// The same numbers as evaluate_hellaswag (see hellaswag.h) with these differences, each as
// the reference implementation does it for such models:
//  - the context starts with the tokenizer's BOS when its post-processor (or
//    tokenizer_config's add_bos_token) adds one, as lm-evaluation-harness encodes it; an empty
//    context without BOS starts with the first eos_token_id;
//  - harness style splits the continuation off the encoding of context + " " + ending, as the
//    harness's _encode_pair does (SentencePiece-like tokenizers join words differently);
//    completion style encodes context and " " + ending apart, as nanoGPT does;
//  - contexts longer than max_position_embeddings (when set) lose their first tokens.
// options.items_per_batch items are scored together (contexts in one pass, endings in another).
HellaSwagResult evaluate_hellaswag_hf(const hf::HfModel& model, const hf::Tokenizer& tokenizer,
                                      const std::vector<HellaSwagItem>& items,
                                      const HellaSwagOptions& options = {});

}  // namespace greenmoe

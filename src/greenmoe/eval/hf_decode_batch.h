// Decoding a Hugging Face model through the engine's key/value caches: the sequences with new
// tokens in a step run through one forward_batch.
#pragma once

#include <memory>

#include "greenmoe/eval/decode_batch.h"
#include "greenmoe/hf/hf_model.h"

namespace greenmoe {

// The model must outlive the batch.
std::unique_ptr<DecodeBatch> hf_decode_batch(const hf::HfModel& model, int batch, int max_len);

}  // namespace greenmoe

// Instruction data for LoRA healing: JSONL files of plain text ({"text": …}), of
// conversations as OpenHermes-2.5 ships them ({"conversations": [{"from": "human"|"gpt"|
// "system", "value": …}]}) or of Alpaca records ({"instruction", "input", "output"}),
// formatted by a template, tokenized with the model's own tokenizer, and cut into fixed-length
// training sequences (packed or padded) with labels marking which tokens carry loss.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/text/hf_tokenizer.h"

namespace greenmoe::lora {

// Label that contributes no loss (transformers' ignore_index).
constexpr int32_t kIgnoreLabel = -100;

// Which tokens carry loss: every token, or only those of the responses (the assistant's
// turns; the prompt parts get kIgnoreLabel).
enum class LossOn { All, Responses };

struct InstructionDataOptions {
    std::string text_field = "text";  // the field of plain-text records
    // How conversations become text: "instruction-response" (the MoEITS authors':
    // "Instruction:\n{human}\n\nResponse:\n{gpt}", turns separated by "\n\n", a system turn
    // as plain text) or "chatml" ("<|im_start|>{system|user|assistant}\n{value}<|im_end|>\n"
    // per turn). Any other name throws UsageError.
    std::string template_name = "instruction-response";
    LossOn loss_on = LossOn::All;
    int64_t seq_len = 512;
    // Packed: the examples' tokens (each ended by EOS) run on across sequences, no padding.
    // Padded: one example per sequence, cut at seq_len, the rest pad tokens with no loss.
    bool pack = true;
};

// The template names InstructionDataOptions::template_name accepts.
const std::vector<std::string>& instruction_template_names();

// One example as text parts in order; a response part is one the model should learn to write.
struct InstructionExample {
    struct Part {
        std::string text;
        bool response = false;
    };
    std::vector<Part> parts;
    // Whether the EOS that ends the example carries loss under LossOn::Responses: it does when
    // the example ends in a response (a conversation whose last turn is the model's, plain
    // text), so that the model learns to stop there.
    bool ends_in_response = false;
};

// Reads a JSONL file (one JSON object per line, blank lines skipped). A record is
//  - a conversation when it has "conversations": roles "system", "human" (alias "user") and
//    "gpt" (alias "assistant"), the gpt turns' values being the response parts;
//  - else an Alpaca record when it has "instruction" and "output": one human turn (the
//    instruction, then "\n\nInput:\n{input}" when "input" is there and not empty, as the
//    MoEITS authors' training script writes it) and one gpt turn (the output);
//  - else plain text from options.text_field, all of it a response part (so that
//    LossOn::Responses still trains on it).
// Formatted with options.template_name. A malformed line, a missing field, an unknown role or
// a file without records throws Error naming file, line and field; an unknown template
// UsageError.
std::vector<InstructionExample> read_instruction_file(const std::filesystem::path& path,
                                                      const InstructionDataOptions& options);

// The examples as training sequences [rows, seq_len]: ids and labels (labels equal to ids
// where loss is taken, kIgnoreLabel elsewhere; causal LMs shift them inside). Each example is
// the special tokens the tokenizer puts before a text (its BOS, where it adds one), its parts
// tokenized one by one (so that a label boundary never falls inside a token), and `eos_id`.
// Under LossOn::Responses the special tokens and prompt parts carry no loss, the response
// parts do, and so does the EOS when the example ends in a response. Packing drops a final
// partial sequence (Error when not one full sequence results); padding uses pad_id.
struct TrainingSequences {
    int64_t rows = 0, seq_len = 0;
    std::vector<int32_t> ids, labels;
    int64_t examples = 0;        // examples that went in
    int64_t tokens = 0;          // their tokens, EOS included, before packing or padding
    int64_t truncated = 0;       // padded: examples longer than seq_len, cut at its end
    int64_t dropped_tokens = 0;  // packed: the tokens of the final partial sequence
};
TrainingSequences build_training_sequences(const std::vector<InstructionExample>& examples,
                                           const hf::Tokenizer& tokenizer,
                                           const InstructionDataOptions& options, int32_t eos_id,
                                           int32_t pad_id);

}  // namespace greenmoe::lora

// The `pre_tokenizer` stage of a tokenizer.json: Sequence, ByteLevel, Split, Metaspace, Digits,
// Whitespace, WhitespaceSplit, Punctuation, CharDelimiterSplit, BertPreTokenizer.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "greenmoe/text/hf_json.h"
#include "greenmoe/text/hf_split.h"

namespace greenmoe::hf {

// One piece of the text on its way to the model. An added token found in the text is a piece
// of its own with its id set; the stages leave such pieces alone.
struct Piece {
    std::string text;
    bool at_start = false;  // begins at offset 0 of the original text (Metaspace "first")
    int token = -1;         // the added token's id, or -1
};

// Metaspace's prepend_scheme (older files say add_prefix_space true / false).
enum class PrependScheme { kAlways, kFirst, kNever };
PrependScheme parse_prepend_scheme(const JsonNode& node);

// GPT-2's byte-to-character table: byte b is shown as the character byte_level_char(b).
const std::array<std::string, 256>& byte_level_chars();

class PreTokenizer {
  public:
    // `node` may be JSON null (no pre-tokenizer).
    static PreTokenizer parse(const JsonNode& node);

    // Splits every piece without a token id further, in place; empty pieces are dropped.
    void apply(std::vector<Piece>& pieces) const;

  private:
    enum class Kind {
        kByteLevel,
        kSplit,
        kMetaspace,
        kDigits,
        kWhitespace,
        kWhitespaceSplit,
        kPunctuation,
        kCharDelimiter,
        kBert
    };
    struct Step {
        Kind kind;
        bool add_prefix_space = false, use_regex = true;  // ByteLevel
        Pattern pattern;                                  // Split
        SplitBehavior behavior = SplitBehavior::kIsolated;
        bool invert = false;
        std::string replacement;  // Metaspace: the replacement character; CharDelimiter
        PrependScheme scheme = PrependScheme::kAlways;
        bool split = true;
        bool individual_digits = false;
    };
    void add(const JsonNode& node);
    void apply_step(const Step& step, const Piece& piece, std::vector<Piece>& out) const;

    std::vector<Step> steps_;  // a Sequence, flattened
    std::shared_ptr<const Regex> gpt2_regex_, word_regex_;
};

}  // namespace greenmoe::hf

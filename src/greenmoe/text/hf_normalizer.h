// The `normalizer` stage of a tokenizer.json: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD,
// Lowercase, Strip, StripAccents, BertNormalizer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "greenmoe/text/hf_json.h"
#include "greenmoe/text/hf_split.h"
#include "greenmoe/text/hf_unicode.h"

namespace greenmoe::hf {

class Normalizer {
  public:
    // `node` may be JSON null (no normalizer). Throws Error naming the JSON path of an
    // unsupported type.
    static Normalizer parse(const JsonNode& node);

    std::string apply(std::string_view text) const;
    bool empty() const { return steps_.empty(); }

  private:
    enum class Kind { kPrepend, kReplace, kUnicode, kLowercase, kStrip, kStripAccents, kBert };
    struct Step {
        Kind kind;
        std::string text;  // Prepend: the prefix; Replace: the content
        Pattern pattern;   // Replace
        NormalForm form = NormalForm::kNfc;
        bool left = false, right = false;  // Strip
        // BertNormalizer
        bool clean_text = true, chinese_chars = true, strip_accents = false, lowercase = true;
    };
    void add(const JsonNode& node);

    std::vector<Step> steps_;  // a Sequence, flattened
};

}  // namespace greenmoe::hf

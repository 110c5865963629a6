// The `decoder` stage of a tokenizer.json: tokens back to text. Sequence, ByteLevel, Metaspace,
// ByteFallback, Fuse, Strip, Replace, BPEDecoder, WordPiece.
#pragma once

#include <string>
#include <vector>

#include "greenmoe/text/hf_json.h"
#include "greenmoe/text/hf_pre_tokenizer.h"
#include "greenmoe/text/hf_split.h"

namespace greenmoe::hf {

class Decoder {
  public:
    // `node` may be JSON null: tokens are then joined with spaces, as `tokenizers` does.
    static Decoder parse(const JsonNode& node);
    std::string decode(std::vector<std::string> tokens) const;

  private:
    enum class Kind {
        kByteLevel,
        kMetaspace,
        kByteFallback,
        kFuse,
        kStrip,
        kReplace,
        kBpeSuffix,
        kWordPiece
    };
    struct Step {
        Kind kind;
        std::string text;  // Metaspace: replacement; Strip: content; Replace: content; suffix
        Pattern pattern;   // Replace
        PrependScheme scheme = PrependScheme::kAlways;
        size_t start = 0, stop = 0;  // Strip
        bool cleanup = true;         // WordPiece
    };
    void add(const JsonNode& node);
    static std::vector<std::string> apply(const Step& step, std::vector<std::string> tokens);

    bool present_ = false;
    std::vector<Step> steps_;
};

}  // namespace greenmoe::hf

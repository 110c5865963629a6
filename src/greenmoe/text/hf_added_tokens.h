// The added tokens of a tokenizer.json (special or not): found in the text before the model
// runs, with their lstrip / rstrip / single_word rules (`tokenizers`' AddedVocabulary).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace greenmoe::hf {

struct AddedToken {
    int id = -1;
    std::string content;
    bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// Finds added tokens in a text: leftmost match first, the longest among those starting there.
class AddedTokenMatcher {
  public:
    // `patterns[i]` is the text to find for tokens[i] (its normalized content where the
    // token matches normalized text). Empty patterns are never matched.
    AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);
    AddedTokenMatcher() = default;

    struct Split {
        size_t begin, end;
        int token;  // -1 for text between tokens
    };
    // The text cut at the tokens found; an empty text gives no splits.
    std::vector<Split> split(std::string_view text) const;
    bool empty() const { return tokens_.empty(); }

  private:
    std::vector<AddedToken> tokens_;
    std::vector<std::string> patterns_;
    // Per first byte, the indices of patterns starting with it, longest first.
    std::vector<std::vector<int>> by_first_byte_ = std::vector<std::vector<int>>(256);
};

}  // namespace greenmoe::hf

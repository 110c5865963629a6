// The WordPiece model of a tokenizer.json (BERT's): greedy longest-match-first subwords, the
// continuing ones with a prefix ("##"), a word with no match at all becomes the unk token.
#pragma once

#include "greenmoe/text/hf_model.h"

namespace greenmoe::hf {

class WordPieceModel final : public VocabularyModel {
  public:
    static WordPieceModel parse(const JsonNode& node);

  private:
    void tokenize_word(const std::string& word, std::vector<int>& out) const override;
    int unk_id_ = -1;
    std::string prefix_;
    size_t max_chars_ = 100;
};

}  // namespace greenmoe::hf

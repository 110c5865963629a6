// The WordPiece model of a tokenizer.json (BERT's): greedy longest-match-first subwords, the
// continuing ones with a prefix ("##"), a word with no match at all becomes the unk token.
#pragma once

#include "greenmoe/text/hf_model.h"

namespace greenmoe::hf {

class WordPieceModel final : public Model {
  public:
    static WordPieceModel parse(const JsonNode& node);

    void tokenize(const std::string& word, std::vector<int>& out, BpeCache* cache) const override;
    std::optional<int> token_to_id(std::string_view token) const override {
        return vocab_.find(token);
    }
    const std::string* id_to_token(int id) const override { return vocab_.token(id); }
    int max_id() const override { return vocab_.max_id(); }

  private:
    Vocabulary vocab_;
    int unk_id_ = -1;
    std::string prefix_;
    size_t max_chars_ = 100;
};

}  // namespace greenmoe::hf

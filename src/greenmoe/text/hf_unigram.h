// The Unigram model of a tokenizer.json (SentencePiece's): the segmentation of a word with
// the highest total log-probability (Viterbi), unknown characters as the unk token (runs of
// them fused), optional byte fallback.
#pragma once

#include <vector>

#include "greenmoe/text/hf_model.h"

namespace greenmoe::hf {

class UnigramModel final : public Model {
  public:
    static UnigramModel parse(const JsonNode& node);

    void tokenize(const std::string& word, std::vector<int>& out, BpeCache* cache) const override;
    std::optional<int> token_to_id(std::string_view token) const override {
        return vocab_.find(token);
    }
    const std::string* id_to_token(int id) const override { return vocab_.token(id); }
    int max_id() const override { return vocab_.max_id(); }

  private:
    void tokenize_uncached(const std::string& word, std::vector<int>& out) const;

    Vocabulary vocab_;
    std::vector<double> scores_;  // by id
    int unk_id_ = -1;
    bool byte_fallback_ = false;
    double min_score_ = 0;
    size_t max_piece_bytes_ = 0;
};

}  // namespace greenmoe::hf

// The Unigram model of a tokenizer.json (SentencePiece's): the segmentation of a word with
// the highest total log-probability (Viterbi), unknown characters as the unk token (runs of
// them fused), optional byte fallback.
#pragma once

#include <vector>

#include "greenmoe/text/hf_model.h"

namespace greenmoe::hf {

class UnigramModel final : public VocabularyModel {
  public:
    static UnigramModel parse(const JsonNode& node);

  private:
    void tokenize_word(const std::string& word, std::vector<int>& out) const override;

    std::vector<double> scores_;  // by id
    int unk_id_ = -1;
    bool byte_fallback_ = false;
    double min_score_ = 0;
    size_t max_piece_bytes_ = 0;
};

}  // namespace greenmoe::hf

// The BPE model of a tokenizer.json (`tokenizers`' models/bpe): vocabulary, ranked merges,
// byte fallback, unknown-token fusing, word prefixes and suffixes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "greenmoe/text/hf_json.h"
#include "greenmoe/text/hf_model.h"

namespace greenmoe::hf {

class BpeModel final : public VocabularyModel {
  public:
    // `node` is a "model" object of type BPE. Throws Error naming the JSON path for
    // dropout, a malformed merge or a merge whose parts or result are not in the vocabulary.
    static BpeModel parse(const JsonNode& node);

  private:
    struct Merge {
        int rank, merged;
    };
    void tokenize_word(const std::string& word, std::vector<int>& out) const override;
    const Merge* find_merge(int left, int right) const;

    // Open addressing over flat arrays, keyed by left << 32 | right (kEmptyKey: free): the
    // lookup is most of BPE's time, and a node-based map's pointer chasing doubled it.
    static constexpr uint64_t kEmptyKey = ~uint64_t{0};
    void set_merge(uint64_t key, Merge merge);
    std::vector<uint64_t> merge_keys_;
    std::vector<Merge> merge_values_;
    uint64_t merge_mask_ = 0;
    std::optional<int> unk_id_;
    std::string continuing_subword_prefix_, end_of_word_suffix_;
    bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
    int byte_ids_[256];  // <0xNN> tokens for byte fallback, -1 where absent
    bool all_bytes_ = false;
};

}  // namespace greenmoe::hf

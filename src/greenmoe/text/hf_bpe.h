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

namespace greenmoe::hf {

// Remembers the ids of words already tokenized (natural text repeats its words). Not
// thread-safe: one per thread. Bounded, so that ever new words cannot grow it without limit.
class BpeCache {
  public:
    static constexpr size_t kMaxEntries = 1 << 18;
    const std::vector<int>* find(const std::string& word) const {
        const auto it = map_.find(word);
        return it == map_.end() ? nullptr : &it->second;
    }
    void insert(const std::string& word, const std::vector<int>& ids) {
        if (map_.size() >= kMaxEntries) map_.clear();
        map_.emplace(word, ids);
    }

  private:
    std::unordered_map<std::string, std::vector<int>> map_;
};

class BpeModel {
  public:
    // `node` is the "model" object. Throws Error naming the JSON path for another model
    // type (Unigram, WordPiece, WordLevel), dropout, a malformed merge or a merge whose
    // parts or result are not in the vocabulary.
    static BpeModel parse(const JsonNode& node);

    // Appends the ids of one pre-tokenized word.
    void tokenize(const std::string& word, std::vector<int>& out, BpeCache* cache) const;

    std::optional<int> token_to_id(std::string_view token) const;
    const std::string* id_to_token(int id) const;  // null when no token has this id
    int max_id() const { return static_cast<int>(id_to_token_.size()) - 1; }

  private:
    struct Merge {
        int rank, merged;
    };
    void tokenize_uncached(const std::string& word, std::vector<int>& out) const;
    const Merge* find_merge(int left, int right) const;

    // Looked up by string_view without building a string for each character.
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, int, StringHash, std::equal_to<>> vocab_;
    std::vector<std::string> id_to_token_;
    std::vector<bool> has_token_;
    std::unordered_map<uint64_t, Merge> merges_;  // key: left << 32 | right
    std::optional<int> unk_id_;
    std::string continuing_subword_prefix_, end_of_word_suffix_;
    bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
    int byte_ids_[256];  // <0xNN> tokens for byte fallback, -1 where absent
    bool all_bytes_ = false;
};

}  // namespace greenmoe::hf

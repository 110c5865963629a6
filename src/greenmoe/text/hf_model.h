// The `model` stage of a tokenizer.json: one pre-tokenized word to ids. BPE, WordPiece and
// Unigram share this interface and the vocabulary below.
#pragma once

#include <memory>
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
    static constexpr size_t kMaxCachedWordBytes = 256;
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

// Token strings ↔ ids, looked up by string_view without building a string.
class Vocabulary {
  public:
    // The {token: id} object of a tokenizer.json model.
    static Vocabulary from_object(const JsonNode& vocab);
    // Adds token → id; throws Error naming `where` for an id out of range.
    void add(const std::string& token, long long id, const std::string& where);
    std::optional<int> find(std::string_view token) const {
        const auto it = ids_.find(token);
        if (it == ids_.end()) return std::nullopt;
        return it->second;
    }
    const std::string* token(int id) const {
        if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || !present_[id]) return nullptr;
        return &tokens_[static_cast<size_t>(id)];
    }
    int max_id() const { return static_cast<int>(tokens_.size()) - 1; }
    size_t size() const { return ids_.size(); }

  private:
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    std::unordered_map<std::string, int, StringHash, std::equal_to<>> ids_;
    std::vector<std::string> tokens_;
    std::vector<bool> present_;
};

class Model {
  public:
    virtual ~Model() = default;
    // The model of the "model" object, by its "type" (BPE, WordPiece, Unigram). Throws Error
    // naming the JSON path for another type or a malformed model.
    static std::unique_ptr<const Model> parse(const JsonNode& node);

    // Appends the ids of one pre-tokenized word; `cache` (optional) memoises words of up to
    // BpeCache::kMaxCachedWordBytes (longer ones, a whole paragraph where no pre-tokenizer
    // splits, seldom repeat).
    void tokenize(const std::string& word, std::vector<int>& out, BpeCache* cache) const;
    virtual std::optional<int> token_to_id(std::string_view token) const = 0;
    virtual const std::string* id_to_token(int id) const = 0;  // null when no token has it
    virtual int max_id() const = 0;

  protected:
    // The ids of one non-empty word, without a cache.
    virtual void tokenize_word(const std::string& word, std::vector<int>& out) const = 0;
};

// A model whose token strings and ids are one Vocabulary (all three kinds are).
class VocabularyModel : public Model {
  public:
    std::optional<int> token_to_id(std::string_view token) const override {
        return vocab_.find(token);
    }
    const std::string* id_to_token(int id) const override { return vocab_.token(id); }
    int max_id() const override { return vocab_.max_id(); }

  protected:
    Vocabulary vocab_;
};

}  // namespace greenmoe::hf

// A Hugging Face tokenizer read from tokenizer.json (and tokenizer_config.json beside it):
// normalizer → pre-tokenizer → model (BPE, WordPiece, Unigram) → post-processor, and a decoder back
// to text, each stage as the `tokenizers` library defines it, so that the ids are the ones the
// model was trained on.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "greenmoe/text/hf_added_tokens.h"
#include "greenmoe/text/hf_decoder.h"
#include "greenmoe/text/hf_model.h"
#include "greenmoe/text/hf_normalizer.h"
#include "greenmoe/text/hf_pre_tokenizer.h"

namespace greenmoe::hf {

class Tokenizer {
  public:
    // `path`: a tokenizer.json file, or a folder holding one (and optionally
    // tokenizer_config.json, whose add_bos_token / add_eos_token, bos_token and eos_token are
    // honoured as transformers' tokenizer classes honour them). Throws Error naming the file,
    // the JSON path and the type for anything it cannot reproduce exactly.
    static Tokenizer load(const std::filesystem::path& path);
    // The same from text already read; `file` names it in errors. `config` may be null.
    static Tokenizer from_json(const nlohmann::json& tokenizer, const std::string& file,
                               const nlohmann::json& config = nullptr,
                               const std::string& config_file = "tokenizer_config.json");

    // The ids of `text`. Ill-formed UTF-8 is first replaced by U+FFFD, as a reader decoding
    // with errors="replace" would. add_special_tokens: apply the post-processor (e.g. <s>).
    // `cache` (optional, one per thread) memoises BPE of repeated words.
    std::vector<int> encode(std::string_view text, bool add_special_tokens = true,
                            BpeCache* cache = nullptr) const;
    // The ids and the token strings `tokenizers`' Encoding.tokens gives: the vocabulary's
    // string for model tokens, the matched text (with whitespace lstrip/rstrip took) for added
    // tokens found in the text.
    struct Encoding {
        std::vector<int> ids;
        std::vector<std::string> tokens;
    };
    Encoding encode_with_tokens(std::string_view text, bool add_special_tokens = true) const;
    // Many texts on all OpenMP threads; the same ids as encode() one by one.
    std::vector<std::vector<int>> encode_batch(const std::vector<std::string_view>& texts,
                                               bool add_special_tokens = true) const;

    // Text of the ids; skip_special_tokens drops special added tokens first. Throws Error for
    // an id no token has.
    std::string decode(const std::vector<int>& ids, bool skip_special_tokens = true) const;
    // A token's string as the vocabulary writes it (e.g. "Ġworld", "<0x0A>").
    std::string id_to_token(int id) const;
    std::optional<int> token_to_id(std::string_view token) const;

    // One more than the largest id of the model or an added token.
    int vocab_size() const { return vocab_size_; }
    std::optional<int> bos_id() const { return bos_id_; }
    std::optional<int> eos_id() const { return eos_id_; }
    const std::string& source() const { return source_; }

  private:
    std::vector<int> encode_impl(std::string_view text, bool add_special_tokens, BpeCache* cache,
                                 std::vector<std::string>* tokens) const;
    void split_added(std::vector<Piece>& pieces, const AddedTokenMatcher& matcher) const;
    void post_process(std::vector<int>& ids) const;
    bool is_special_id(int id) const;

    std::string source_;
    Normalizer normalizer_;
    PreTokenizer pre_tokenizer_;
    std::shared_ptr<const Model> model_;
    Decoder decoder_;
    std::vector<AddedToken> added_;
    // Per added token, the string id_to_token and decode use: `tokenizers` (0.22 on) gives a
    // token that matches normalized text in its normalized form.
    std::vector<std::string> added_decode_forms_;
    std::unordered_map<int, size_t> added_index_;  // id → index in added_
    std::unordered_set<std::string> special_contents_;
    AddedTokenMatcher raw_matcher_, normalized_matcher_;
    // The post-processor's single-sequence template: ids before and after the text.
    std::vector<int> prefix_ids_, suffix_ids_;
    std::optional<int> bos_id_, eos_id_;
    int vocab_size_ = 0;
};

}  // namespace greenmoe::hf

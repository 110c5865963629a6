// GPT-2's byte-level BPE tokenizer (OpenAI's encoder.json + vocab.bpe), byte-exact with
// OpenAI's encoder.py and tiktoken's "gpt2" encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace greenmoe {

class Gpt2Tokenizer {
  public:
    // Remembers the tokens of pieces already encoded: natural text repeats its words,
    // so this removes most BPE work. Not thread-safe: one per thread.
    class WordCache {
      public:
        // Bounded so that a corpus of ever new pieces cannot grow it without limit.
        static constexpr size_t kMaxBytes = size_t{64} << 20;

      private:
        friend class Gpt2Tokenizer;
        // Open addressing over flat arrays: a node-based map's pointer chasing was most
        // of the encoding time.
        struct Slot {
            uint64_t hash = 0;
            uint32_t key_offset = 0, key_length = 0;  // key_length 0: free (keys have ≥ 2 bytes)
            uint32_t token_offset = 0, token_length = 0;
        };
        const Slot* find(std::string_view piece, uint64_t hash) const;
        void insert(std::string_view piece, uint64_t hash, const int* tokens, size_t count);
        void clear();

        std::vector<Slot> slots_;
        size_t used_ = 0;
        std::string keys_;
        std::vector<int> tokens_;
    };

    // Reads <dir>/encoder.json and <dir>/vocab.bpe. Throws Error naming the file (and
    // line) when one is missing or not what GPT-2's files are.
    static Gpt2Tokenizer load(const std::filesystem::path& dir);

    // allow_special: the text "<|endoftext|>" becomes eot_token(); otherwise it is
    // encoded as ordinary text.
    std::vector<int> encode(std::string_view text, bool allow_special = true) const;
    std::vector<int> encode_ordinary(std::string_view text) const;
    // Appends the tokens of `text` (no special tokens) to `out`, memoising in `cache`.
    void encode_ordinary_into(std::string_view text, std::vector<int>& out, WordCache& cache) const;
    // Like encode_ordinary, but splits a large text at places where the pre-tokenizer
    // is known to break anyway and encodes the parts on all OpenMP threads. Same result.
    std::vector<int> encode_ordinary_parallel(std::string_view text) const;

    // The tokens' bytes joined: the exact inverse of encode, even for invalid UTF-8.
    // Throws Error for a token outside [0, vocab_size()).
    std::string decode(const int* tokens, size_t n) const;
    std::string decode(const std::vector<int>& tokens) const;
    const std::string& token_bytes(int token) const;

    int eot_token() const { return eot_token_; }
    int vocab_size() const { return static_cast<int>(token_bytes_.size()); }
    const std::filesystem::path& dir() const { return dir_; }

    static constexpr std::string_view kEndOfText = "<|endoftext|>";

  private:
    Gpt2Tokenizer() = default;

    // One piece from the pre-tokenizer, through the cache.
    void encode_piece(std::string_view piece, std::vector<int>& out, WordCache& cache) const;
    // BPE of one piece, without cache.
    void bpe(std::string_view piece, std::vector<int>& out) const;
    void bpe_short(std::string_view piece, std::vector<int>& out) const;
    void bpe_long(std::string_view piece, std::vector<int>& out) const;

    struct Merge {
        int rank = -1;  // -1: the pair does not merge
        int merged = -1;
    };
    Merge find_merge(int left, int right) const;

    std::filesystem::path dir_;
    std::vector<std::string> token_bytes_;
    int byte_token_[256] = {};
    int eot_token_ = -1;
    // Open-addressing table keyed by (left << 32 | right); kEmptyKey marks free slots.
    static constexpr uint64_t kEmptyKey = ~uint64_t{0};
    std::vector<uint64_t> merge_keys_;
    std::vector<Merge> merge_values_;
    uint64_t merge_mask_ = 0;
};

}  // namespace greenmoe

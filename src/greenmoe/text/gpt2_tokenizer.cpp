// GPT-2 byte-level BPE: loading OpenAI's files, encoding, decoding (see gpt2_tokenizer.h).
#include "greenmoe/text/gpt2_tokenizer.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <queue>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/text/pretokenize.h"

namespace greenmoe {

namespace {

// GPT-2's files spell each byte as a printable code point (OpenAI's bytes_to_unicode):
// printable Latin-1 bytes stand for themselves, the other 68 bytes for U+0100 onwards.
// Returns, for each code point below 324, the byte it stands for, or -1.
std::array<int, 324> make_unicode_to_byte() {
    std::array<int, 324> to_byte;
    to_byte.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        to_byte[printable ? b : next++] = b;
    }
    return to_byte;
}

// Converts a token as spelled in encoder.json / vocab.bpe back to its raw bytes;
// false when it uses a code point outside the byte alphabet.
bool spelled_to_bytes(std::string_view spelled, const std::array<int, 324>& to_byte,
                      std::string& bytes) {
    bytes.clear();
    for (size_t i = 0; i < spelled.size();) {
        const Utf8Char c = decode_utf8(spelled, i);
        if (c.code_point >= to_byte.size() || to_byte[c.code_point] < 0) return false;
        bytes.push_back(static_cast<char>(to_byte[c.code_point]));
        i += c.length;
    }
    return !bytes.empty();
}

uint64_t pair_key(int left, int right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
}

uint64_t hash_key(uint64_t key) {
    key ^= key >> 29;
    key *= 0xBF58476D1CE4E5B9ull;
    key ^= key >> 32;
    return key;
}

// A fast hash of short strings, 8 bytes at a time.
uint64_t hash_bytes(std::string_view s) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, s.data() + i, s.size() - i);
    h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return h;
}

// Pieces longer than this use the O(n log n) heap merge instead of the O(n²) scan.
constexpr size_t kLongPiece = 64;

}  // namespace

const Gpt2Tokenizer::WordCache::Slot* Gpt2Tokenizer::WordCache::find(std::string_view piece,
                                                                     uint64_t hash) const {
    if (slots_.empty()) return nullptr;
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const Slot& slot = slots_[i];
        if (slot.key_length == 0) return nullptr;
        if (slot.hash == hash && slot.key_length == piece.size() &&
            std::memcmp(keys_.data() + slot.key_offset, piece.data(), piece.size()) == 0) {
            return &slot;
        }
    }
}

void Gpt2Tokenizer::WordCache::insert(std::string_view piece, uint64_t hash, const int* tokens,
                                      size_t count) {
    if (keys_.size() + piece.size() + (tokens_.size() + count) * sizeof(int) > kMaxBytes) {
        clear();
        if (piece.size() + count * sizeof(int) > kMaxBytes / 4) return;
    }
    if ((used_ + 1) * 2 > slots_.size()) {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(std::max<size_t>(1024, old.size() * 2), Slot{});
        const size_t mask = slots_.size() - 1;
        for (const Slot& s : old) {
            if (s.key_length == 0) continue;
            size_t i = s.hash & mask;
            while (slots_[i].key_length != 0) i = (i + 1) & mask;
            slots_[i] = s;
        }
    }
    const size_t mask = slots_.size() - 1;
    size_t i = hash & mask;
    while (slots_[i].key_length != 0) i = (i + 1) & mask;
    slots_[i] = Slot{hash, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(piece.size()),
                     static_cast<uint32_t>(tokens_.size()), static_cast<uint32_t>(count)};
    ++used_;
    keys_.append(piece);
    tokens_.insert(tokens_.end(), tokens, tokens + count);
}

void Gpt2Tokenizer::WordCache::clear() {
    slots_.clear();
    used_ = 0;
    keys_.clear();
    tokens_.clear();
}

Gpt2Tokenizer Gpt2Tokenizer::load(const std::filesystem::path& dir) {
    const auto to_byte = make_unicode_to_byte();
    Gpt2Tokenizer tok;
    tok.dir_ = dir;

    const auto encoder_path = dir / "encoder.json";
    const std::string encoder_text = read_file(encoder_path);
    nlohmann::json encoder;
    try {
        encoder = nlohmann::json::parse(encoder_text);
    } catch (const nlohmann::json::exception& e) {
        fail("{}: not valid JSON ({})", encoder_path.string(), e.what());
    }
    check(encoder.is_object() && !encoder.empty(),
          "{}: expected a JSON object mapping token strings to ids", encoder_path.string());
    const size_t vocab = encoder.size();
    tok.token_bytes_.assign(vocab, std::string());
    std::vector<bool> seen(vocab, false);
    std::unordered_map<std::string, int> bytes_to_token;
    bytes_to_token.reserve(vocab * 2);
    std::string bytes;
    for (const auto& [key, value] : encoder.items()) {
        check(value.is_number_integer() && value.get<int64_t>() >= 0 &&
                  value.get<int64_t>() < static_cast<int64_t>(vocab),
              "{}: token {:?} has id {}, expected an integer in [0, {})", encoder_path.string(),
              key, value.dump(), vocab);
        const int id = value.get<int>();
        check(!seen[id], "{}: id {} is given to more than one token", encoder_path.string(), id);
        seen[id] = true;
        if (key == kEndOfText) {
            tok.eot_token_ = id;
            bytes.assign(key);
        } else {
            check(spelled_to_bytes(key, to_byte, bytes),
                  "{}: token {:?} (id {}) is not spelled in GPT-2's byte alphabet",
                  encoder_path.string(), key, id);
        }
        check(bytes_to_token.emplace(bytes, id).second,
              "{}: token {:?} (id {}) has the same bytes as another token", encoder_path.string(),
              key, id);
        tok.token_bytes_[id] = bytes;
    }
    check(tok.eot_token_ >= 0, "{}: has no \"{}\" token", encoder_path.string(), kEndOfText);
    for (int b = 0; b < 256; ++b) {
        const auto it = bytes_to_token.find(std::string(1, static_cast<char>(b)));
        check(it != bytes_to_token.end(), "{}: has no token for the single byte 0x{:02X}",
              encoder_path.string(), b);
        tok.byte_token_[b] = it->second;
    }

    const auto merges_path = dir / "vocab.bpe";
    const std::string merges_text = read_file(merges_path);
    std::vector<std::pair<uint64_t, Merge>> merges;
    std::string left_bytes, right_bytes;
    size_t line_no = 0;
    for (size_t pos = 0; pos < merges_text.size();) {
        size_t end = merges_text.find('\n', pos);
        if (end == std::string::npos) end = merges_text.size();
        std::string_view line(merges_text.data() + pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
        const size_t space = line.find(' ');
        check(space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                  line.find(' ', space + 1) == std::string_view::npos,
              "{}:{}: expected two tokens separated by one space, got {:?}", merges_path.string(),
              line_no, line);
        const std::string_view left = line.substr(0, space), right = line.substr(space + 1);
        check(spelled_to_bytes(left, to_byte, left_bytes) &&
                  spelled_to_bytes(right, to_byte, right_bytes),
              "{}:{}: {:?} is not spelled in GPT-2's byte alphabet", merges_path.string(), line_no,
              line);
        const auto lt = bytes_to_token.find(left_bytes);
        const auto rt = bytes_to_token.find(right_bytes);
        const auto mt = bytes_to_token.find(left_bytes + right_bytes);
        check(
            lt != bytes_to_token.end() && rt != bytes_to_token.end() && mt != bytes_to_token.end(),
            "{}:{}: merge {:?} uses or makes a token that encoder.json does not have",
            merges_path.string(), line_no, line);
        merges.push_back(
            {pair_key(lt->second, rt->second), Merge{static_cast<int>(merges.size()), mt->second}});
    }
    check(!merges.empty(), "{}: has no merges", merges_path.string());

    size_t capacity = 16;
    while (capacity < merges.size() * 2) capacity *= 2;
    tok.merge_keys_.assign(capacity, kEmptyKey);
    tok.merge_values_.assign(capacity, Merge{});
    tok.merge_mask_ = capacity - 1;
    for (size_t i = 0; i < merges.size(); ++i) {
        const auto& [key, merge] = merges[i];
        uint64_t slot = hash_key(key) & tok.merge_mask_;
        while (tok.merge_keys_[slot] != kEmptyKey && tok.merge_keys_[slot] != key) {
            slot = (slot + 1) & tok.merge_mask_;
        }
        check(tok.merge_keys_[slot] == kEmptyKey, "{}: merge number {} repeats an earlier merge",
              merges_path.string(), i + 1);
        tok.merge_keys_[slot] = key;
        tok.merge_values_[slot] = merge;
    }
    return tok;
}

Gpt2Tokenizer::Merge Gpt2Tokenizer::find_merge(int left, int right) const {
    const uint64_t key = pair_key(left, right);
    uint64_t slot = hash_key(key) & merge_mask_;
    while (true) {
        const uint64_t k = merge_keys_[slot];
        if (k == key) return merge_values_[slot];
        if (k == kEmptyKey) return Merge{};
        slot = (slot + 1) & merge_mask_;
    }
}

void Gpt2Tokenizer::bpe(std::string_view piece, std::vector<int>& out) const {
    if (piece.size() <= kLongPiece) {
        bpe_short(piece, out);
    } else {
        bpe_long(piece, out);
    }
}

// OpenAI's loop: find the lowest-ranked adjacent pair, merge every occurrence of it
// left to right, repeat until no pair merges.
void Gpt2Tokenizer::bpe_short(std::string_view piece, std::vector<int>& out) const {
    int symbols[kLongPiece];
    size_t n = piece.size();
    for (size_t i = 0; i < n; ++i) symbols[i] = byte_token_[static_cast<unsigned char>(piece[i])];
    while (n > 1) {
        Merge best;
        int best_left = -1, best_right = -1;
        for (size_t i = 0; i + 1 < n; ++i) {
            const Merge m = find_merge(symbols[i], symbols[i + 1]);
            if (m.rank >= 0 && (best.rank < 0 || m.rank < best.rank)) {
                best = m;
                best_left = symbols[i];
                best_right = symbols[i + 1];
            }
        }
        if (best.rank < 0) break;
        size_t w = 0;
        for (size_t i = 0; i < n;) {
            if (i + 1 < n && symbols[i] == best_left && symbols[i + 1] == best_right) {
                symbols[w++] = best.merged;
                i += 2;
            } else {
                symbols[w++] = symbols[i++];
            }
        }
        n = w;
    }
    out.insert(out.end(), symbols, symbols + n);
}

// The same result as bpe_short for long pieces (a run of digits or symbols can be
// megabytes): symbols in a linked list, candidate pairs in a heap. All occurrences of
// the lowest rank are taken as one batch, left to right, as OpenAI's loop does; a merge
// never recreates the pair it merged (the new token is longer than either half), so
// the batch is complete when it is popped.
void Gpt2Tokenizer::bpe_long(std::string_view piece, std::vector<int>& out) const {
    const size_t n = piece.size();
    std::vector<int> ids(n), next(n), prev(n);
    for (size_t i = 0; i < n; ++i) {
        ids[i] = byte_token_[static_cast<unsigned char>(piece[i])];
        next[i] = i + 1 < n ? static_cast<int>(i + 1) : -1;
        prev[i] = static_cast<int>(i) - 1;
    }
    struct Candidate {
        int rank, left, left_id, right_id;
        bool operator>(const Candidate& o) const {
            return rank != o.rank ? rank > o.rank : left > o.left;
        }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    const auto push = [&](int left) {
        if (left < 0 || next[left] < 0) return;
        const int right_id = ids[next[left]];
        const Merge m = find_merge(ids[left], right_id);
        if (m.rank >= 0) heap.push({m.rank, left, ids[left], right_id});
    };
    for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int>(i));
    std::vector<bool> alive(n, true);
    std::vector<Candidate> batch;
    while (!heap.empty()) {
        const int rank = heap.top().rank;
        batch.clear();
        while (!heap.empty() && heap.top().rank == rank) {
            batch.push_back(heap.top());
            heap.pop();
        }
        // The heap orders equal ranks by position, so the batch is already left to right.
        for (const Candidate& c : batch) {
            const int left = c.left;
            if (!alive[left] || ids[left] != c.left_id || next[left] < 0) continue;
            const int right = next[left];
            if (ids[right] != c.right_id) continue;
            ids[left] = find_merge(c.left_id, c.right_id).merged;
            alive[right] = false;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            push(prev[left]);
            push(left);
        }
    }
    for (int i = 0; i >= 0; i = next[i]) out.push_back(ids[i]);
}

void Gpt2Tokenizer::encode_piece(std::string_view piece, std::vector<int>& out,
                                 WordCache& cache) const {
    if (piece.size() == 1) {
        out.push_back(byte_token_[static_cast<unsigned char>(piece[0])]);
        return;
    }
    const uint64_t hash = hash_bytes(piece);
    if (const auto* slot = cache.find(piece, hash)) {
        const int* begin = cache.tokens_.data() + slot->token_offset;
        out.insert(out.end(), begin, begin + slot->token_length);
        return;
    }
    const size_t start = out.size();
    bpe(piece, out);
    cache.insert(piece, hash, out.data() + start, out.size() - start);
}

void Gpt2Tokenizer::encode_ordinary_into(std::string_view text, std::vector<int>& out,
                                         WordCache& cache) const {
    pretokenize(text, [&](std::string_view piece) { encode_piece(piece, out, cache); });
}

std::vector<int> Gpt2Tokenizer::encode_ordinary(std::string_view text) const {
    std::vector<int> out;
    out.reserve(text.size() / 3 + 16);
    WordCache cache;
    encode_ordinary_into(text, out, cache);
    return out;
}

std::vector<int> Gpt2Tokenizer::encode(std::string_view text, bool allow_special) const {
    if (!allow_special) return encode_ordinary(text);
    std::vector<int> out;
    out.reserve(text.size() / 3 + 16);
    WordCache cache;
    while (true) {
        const size_t at = text.find(kEndOfText);
        encode_ordinary_into(text.substr(0, at), out, cache);
        if (at == std::string_view::npos) break;
        out.push_back(eot_token_);
        text.remove_prefix(at + kEndOfText.size());
    }
    return out;
}

std::vector<int> Gpt2Tokenizer::encode_ordinary_parallel(std::string_view text) const {
    constexpr size_t kMinChunk = size_t{1} << 20;
    const size_t threads = static_cast<size_t>(std::max(1, omp_get_max_threads()));
    if (threads == 1 || text.size() < 2 * kMinChunk) return encode_ordinary(text);
    const size_t target = std::max(kMinChunk, text.size() / (threads * 4));
    // A chunk may end just before a '\n' that follows a visible ASCII character: every
    // pattern alternative stops there (no piece holds both a non-space and a '\n'), and
    // the piece before ends with a non-space, so no lookahead crosses the cut.
    std::vector<size_t> cuts{0};
    for (size_t pos = target; pos < text.size();) {
        const size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) break;
        const auto before = static_cast<unsigned char>(text[nl - 1]);
        if (before > ' ' && before < 0x7F) {
            cuts.push_back(nl);
            pos = nl + target;
        } else {
            pos = nl + 1;
        }
    }
    cuts.push_back(text.size());
    const size_t chunks = cuts.size() - 1;
    std::vector<std::vector<int>> parts(chunks);
    std::vector<WordCache> caches(threads);
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t c = 0; c < chunks; ++c) {
        try {
            const std::string_view chunk = text.substr(cuts[c], cuts[c + 1] - cuts[c]);
            parts[c].reserve(chunk.size() / 3 + 16);
            auto& cache = caches[static_cast<size_t>(omp_get_thread_num()) % threads];
            encode_ordinary_into(chunk, parts[c], cache);
        } catch (...) {
#pragma omp critical
            error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
    size_t total = 0;
    for (const auto& p : parts) total += p.size();
    std::vector<int> out;
    out.reserve(total);
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

const std::string& Gpt2Tokenizer::token_bytes(int token) const {
    check(token >= 0 && token < vocab_size(), "token id {} is outside GPT-2's vocabulary [0, {})",
          token, vocab_size());
    return token_bytes_[static_cast<size_t>(token)];
}

std::string Gpt2Tokenizer::decode(const int* tokens, size_t n) const {
    std::string text;
    text.reserve(n * 4);
    for (size_t i = 0; i < n; ++i) text += token_bytes(tokens[i]);
    return text;
}

std::string Gpt2Tokenizer::decode(const std::vector<int>& tokens) const {
    return decode(tokens.data(), tokens.size());
}

}  // namespace greenmoe

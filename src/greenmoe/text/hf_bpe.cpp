// BPE as `tokenizers` runs it: a word's characters (with prefix/suffix) looked up, unknown
// ones sent to byte fallback or the unk token, then merges applied lowest rank first, leftmost
// first among equal ranks (models/bpe/word.rs).
#include "greenmoe/text/hf_bpe.h"

#include <fmt/format.h>

#include <queue>

#include "greenmoe/text/hf_unicode.h"

namespace greenmoe::hf {

namespace {
uint64_t pair_key(int left, int right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
}
}  // namespace

BpeModel BpeModel::parse(const JsonNode& node) {
    node.expect_object();
    check(!node.has("dropout"), "{}/dropout: BPE dropout must be null for deterministic encoding",
          node.where());
    BpeModel model;
    model.vocab_ = Vocabulary::from_object(node["vocab"]);
    model.continuing_subword_prefix_ = node.string_or("continuing_subword_prefix", "");
    model.end_of_word_suffix_ = node.string_or("end_of_word_suffix", "");
    model.fuse_unk_ = node.boolean_or("fuse_unk", false);
    model.byte_fallback_ = node.boolean_or("byte_fallback", false);
    model.ignore_merges_ = node.boolean_or("ignore_merges", false);
    if (node.has("unk_token")) {
        const std::string unk = node["unk_token"].string();
        model.unk_id_ = model.vocab_.find(unk);
        check(model.unk_id_.has_value(), "{}/unk_token: {:?} is not in the vocabulary",
              node.where(), unk);
    }
    model.all_bytes_ = true;
    for (int b = 0; b < 256; ++b) {
        model.byte_ids_[b] = model.vocab_.find(fmt::format("<0x{:02X}>", b)).value_or(-1);
        model.all_bytes_ = model.all_bytes_ && model.byte_ids_[b] >= 0;
    }

    const JsonNode merges = node["merges"];
    merges.expect_array();
    size_t capacity = 16;
    while (capacity < merges.size() * 2) capacity *= 2;  // load factor ≤ 1/2
    model.merge_keys_.assign(capacity, kEmptyKey);
    model.merge_values_.assign(capacity, Merge{-1, -1});
    model.merge_mask_ = capacity - 1;
    const size_t prefix_length = model.continuing_subword_prefix_.size();
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const JsonNode merge = merges[rank];
        std::string left, right;
        if (merge.value().is_string()) {
            // The older format: "left right", exactly one space.
            const std::string text = merge.string();
            const size_t space = text.find(' ');
            check(space != std::string::npos && text.find(' ', space + 1) == std::string::npos,
                  "{}: expected a merge \"left right\" with one space, not {:?}", merge.where(),
                  text);
            left = text.substr(0, space);
            right = text.substr(space + 1);
        } else {
            merge.expect_array();
            check(merge.size() == 2, "{}: expected a merge [left, right]", merge.where());
            left = merge[size_t{0}].string();
            right = merge[size_t{1}].string();
        }
        const auto id_of = [&](const std::string& token) {
            const auto id = model.vocab_.find(token);
            check(id.has_value(), "{}: merge names {:?}, which is not in the vocabulary",
                  merge.where(), token);
            return *id;
        };
        const int left_id = id_of(left), right_id = id_of(right);
        // The prefix is cut from the right part by length, as `tokenizers` does.
        check(right.size() >= prefix_length, "{}: merge part {:?} is shorter than the prefix {:?}",
              merge.where(), right, model.continuing_subword_prefix_);
        const int merged = id_of(left + right.substr(prefix_length));
        // A pair listed twice keeps its later rank, as a map filled in order does.
        model.set_merge(pair_key(left_id, right_id), {static_cast<int>(rank), merged});
    }
    return model;
}

namespace {
// Fibonacci hashing: the ids are small and dense, so their bits need spreading.
uint64_t slot_of(uint64_t key, uint64_t mask) {
    return (key * 0x9E3779B97F4A7C15ull >> 20) & mask;
}
}  // namespace

void BpeModel::set_merge(uint64_t key, Merge merge) {
    for (uint64_t slot = slot_of(key, merge_mask_);; slot = (slot + 1) & merge_mask_) {
        if (merge_keys_[slot] == kEmptyKey || merge_keys_[slot] == key) {
            merge_keys_[slot] = key;
            merge_values_[slot] = merge;
            return;
        }
    }
}

const BpeModel::Merge* BpeModel::find_merge(int left, int right) const {
    const uint64_t key = pair_key(left, right);
    for (uint64_t slot = slot_of(key, merge_mask_);; slot = (slot + 1) & merge_mask_) {
        if (merge_keys_[slot] == key) return &merge_values_[slot];
        if (merge_keys_[slot] == kEmptyKey) return nullptr;
    }
}

void BpeModel::tokenize_word(const std::string& word, std::vector<int>& out) const {
    if (ignore_merges_) {  // a word the vocabulary has whole is not merged
        if (const auto id = vocab_.find(word)) {
            out.push_back(*id);
            return;
        }
    }
    // The word's symbols as a linked list, merged in place (left absorbs right).
    struct Symbol {
        int id;
        int prev, next;
        bool removed;
    };
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());
    const auto add = [&](int id) {
        const int index = static_cast<int>(symbols.size());
        symbols.push_back({id, index - 1, -1, false});
        if (index > 0) symbols[static_cast<size_t>(index) - 1].next = index;
    };

    int pending_unk = -1;  // an unknown run waiting to be added (fuse_unk), or -1
    const bool affixes = !continuing_subword_prefix_.empty() || !end_of_word_suffix_.empty();
    std::string affixed;
    for (size_t i = 0; i < word.size();) {
        const size_t length = decode_utf8(word, i).length;
        std::string_view piece = std::string_view(word).substr(i, length);
        if (affixes) {
            affixed.clear();
            if (i > 0) affixed += continuing_subword_prefix_;
            affixed += piece;
            if (i + length == word.size()) affixed += end_of_word_suffix_;
            piece = affixed;
        }
        i += length;
        if (const auto id = vocab_.find(piece)) {
            if (pending_unk >= 0) add(pending_unk);
            pending_unk = -1;
            add(*id);
            continue;
        }
        if (byte_fallback_) {
            bool all_found = true;
            for (const char c : piece)
                all_found = all_found && byte_ids_[static_cast<unsigned char>(c)] >= 0;
            if (all_found) {
                for (const char c : piece) add(byte_ids_[static_cast<unsigned char>(c)]);
                continue;
            }
        }
        if (unk_id_) {
            if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
            pending_unk = *unk_id_;
        }
    }
    if (pending_unk >= 0) add(pending_unk);

    struct Candidate {
        int rank, position, merged;
        bool operator<(
            const Candidate& other) const {  // the queue's top: lowest rank, then position
            return rank != other.rank ? rank > other.rank : position > other.position;
        }
    };
    std::priority_queue<Candidate> queue;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
            queue.push({m->rank, static_cast<int>(i), m->merged});
        }
    }
    while (!queue.empty()) {
        const Candidate top = queue.top();
        queue.pop();
        Symbol& left = symbols[static_cast<size_t>(top.position)];
        if (left.removed || left.next < 0) continue;
        const int right_index = left.next;
        Symbol& right = symbols[static_cast<size_t>(right_index)];
        // A stale entry: the pair at this position changed since it was queued.
        const Merge* current = find_merge(left.id, right.id);
        if (!current || current->merged != top.merged) continue;
        left.id = top.merged;
        left.next = right.next;
        right.removed = true;
        if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.position;
        if (left.prev >= 0) {
            if (const Merge* m = find_merge(symbols[static_cast<size_t>(left.prev)].id, left.id)) {
                queue.push({m->rank, left.prev, m->merged});
            }
        }
        if (left.next >= 0) {
            if (const Merge* m = find_merge(left.id, symbols[static_cast<size_t>(left.next)].id)) {
                queue.push({m->rank, top.position, m->merged});
            }
        }
    }
    for (const Symbol& s : symbols) {
        if (!s.removed) out.push_back(s.id);
    }
}

}  // namespace greenmoe::hf

// Added-token matching (added_vocabulary.rs: find_matches).
#include "greenmoe/text/hf_added_tokens.h"

#include <algorithm>

#include "greenmoe/text/hf_unicode.h"

namespace greenmoe::hf {

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens,
                                     std::vector<std::string> patterns)
    : tokens_(std::move(tokens)), patterns_(std::move(patterns)) {
    for (size_t i = 0; i < patterns_.size(); ++i) {
        if (patterns_[i].empty()) continue;
        by_first_byte_[static_cast<unsigned char>(patterns_[i][0])].push_back(static_cast<int>(i));
    }
    for (auto& list : by_first_byte_) {
        std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
            return patterns_[static_cast<size_t>(a)].size() >
                   patterns_[static_cast<size_t>(b)].size();
        });
    }
}

namespace {

// The first byte of the character that ends at `end` (end > 0).
size_t last_char_start(std::string_view text, size_t end) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    return start;
}

bool is_word_char(uint32_t cp) {
    return is_alphanumeric(cp) || cp == '_';
}

bool ends_with_word(std::string_view text, size_t end) {
    return end > 0 && is_word_char(decode_utf8(text, last_char_start(text, end)).code_point);
}

bool starts_with_word(std::string_view text, size_t begin) {
    return begin < text.size() && is_word_char(decode_utf8(text, begin).code_point);
}

}  // namespace

std::vector<AddedTokenMatcher::Split> AddedTokenMatcher::split(std::string_view text) const {
    std::vector<Split> splits;
    size_t done = 0;  // text before this offset is in `splits`
    for (size_t i = 0; i < text.size(); ++i) {
        const auto& candidates = by_first_byte_[static_cast<unsigned char>(text[i])];
        if (candidates.empty()) continue;
        // The longest token starting here; like the Aho-Corasick search of `tokenizers`, a
        // match refused by single_word is skipped whole, shorter ones are not tried instead.
        int found = -1;
        for (const int c : candidates) {
            const std::string& p = patterns_[static_cast<size_t>(c)];
            if (text.compare(i, p.size(), p) == 0) {
                found = c;
                break;
            }
        }
        if (found < 0) continue;
        const size_t match_end = i + patterns_[static_cast<size_t>(found)].size();
        if (tokens_[static_cast<size_t>(found)].single_word &&
            (ends_with_word(text, i) || starts_with_word(text, match_end))) {
            i = match_end - 1;
            continue;
        }
        const AddedToken& token = tokens_[static_cast<size_t>(found)];
        size_t begin = i, end = i + patterns_[static_cast<size_t>(found)].size();
        if (token.lstrip) {
            // Whitespace before the token joins it, but not what an earlier match took.
            while (begin > done) {
                const size_t start = last_char_start(text, begin);
                if (!is_whitespace(decode_utf8(text, start).code_point)) break;
                begin = start;
            }
        }
        if (token.rstrip) {
            while (end < text.size()) {
                const Utf8Char c = decode_utf8(text, end);
                if (!is_whitespace(c.code_point)) break;
                end += c.length;
            }
        }
        if (done < begin) splits.push_back({done, begin, -1});
        splits.push_back({begin, end, token.id});
        done = end;
        i = end - 1;
    }
    if (done < text.size()) splits.push_back({done, text.size(), -1});
    return splits;
}

}  // namespace greenmoe::hf

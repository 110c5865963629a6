// GPT-2's pre-tokenizer written by hand: splits UTF-8 text into the pieces that the
// pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// would match, without a regex engine (std::regex is slow and knows no \p{L}).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace greenmoe {

// The only distinctions the pattern makes. \s is Unicode White_Space (as in the
// `regex` module and Rust's regex), \p{L} and \p{N} the general categories L* and N*.
enum class CharClass : uint8_t { kOther, kLetter, kNumber, kSpace };

struct CodePointRange {
    uint32_t first, last;
    CharClass cls;
};

// Class of a Unicode scalar value (from the generated table unicode_tables.inc).
CharClass char_class(uint32_t code_point);
// The Unicode version the table was generated from, e.g. "14.0.0".
const char* unicode_version();

inline constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFF;

struct Utf8Char {
    uint32_t code_point;  // kInvalidCodePoint for a byte that starts no well-formed character
    uint32_t length;      // bytes consumed: 1 for an invalid byte
};

// Decodes the character at text[pos] (pos < size). Overlong forms, surrogates, values
// above U+10FFFF, stray continuation bytes and truncated sequences all count as one
// invalid byte, so decoding never fails and always moves forward.
inline Utf8Char decode_utf8(std::string_view text, size_t pos) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char b0 = byte(pos);
    const size_t left = text.size() - pos;
    const auto cont = [&](size_t i) { return (byte(pos + i) & 0xC0) == 0x80; };
    if (b0 < 0x80) return {b0, 1};
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        if (left >= 2 && cont(1)) return {((b0 & 0x1Fu) << 6) | (byte(pos + 1) & 0x3Fu), 2};
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        if (left >= 3 && cont(1) && cont(2)) {
            const uint32_t cp =
                ((b0 & 0x0Fu) << 12) | ((byte(pos + 1) & 0x3Fu) << 6) | (byte(pos + 2) & 0x3Fu);
            if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3};
        }
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        if (left >= 4 && cont(1) && cont(2) && cont(3)) {
            const uint32_t cp = ((b0 & 0x07u) << 18) | ((byte(pos + 1) & 0x3Fu) << 12) |
                                ((byte(pos + 2) & 0x3Fu) << 6) | (byte(pos + 3) & 0x3Fu);
            if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4};
        }
    }
    return {kInvalidCodePoint, 1};
}

namespace detail {

constexpr std::array<CharClass, 128> make_ascii_classes() {
    std::array<CharClass, 128> classes{};
    for (int c = 0; c < 128; ++c) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            classes[c] = CharClass::kLetter;
        } else if (c >= '0' && c <= '9') {
            classes[c] = CharClass::kNumber;
        } else if ((c >= '\t' && c <= '\r') || c == ' ') {
            classes[c] = CharClass::kSpace;
        }
    }
    return classes;
}
inline constexpr std::array<CharClass, 128> kAsciiClasses = make_ascii_classes();

struct ClassedChar {
    CharClass cls;
    uint32_t length;
};

// Invalid bytes are symbols: they join runs of punctuation, never letters or spaces.
inline ClassedChar classify_at(std::string_view text, size_t pos) {
    const unsigned char b = static_cast<unsigned char>(text[pos]);
    if (b < 0x80) return {kAsciiClasses[b], 1};
    const Utf8Char c = decode_utf8(text, pos);
    if (c.code_point == kInvalidCodePoint) return {CharClass::kOther, 1};
    return {char_class(c.code_point), c.length};
}

// Length of the contraction ('s 't 're 've 'm 'll 'd, case-sensitive) at text[pos] == '\''.
inline size_t contraction_length(std::string_view text, size_t pos) {
    const size_t left = text.size() - pos;
    if (left >= 2) {
        const char c1 = text[pos + 1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
        if (left >= 3) {
            const char c2 = text[pos + 2];
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
                return 3;
            }
        }
    }
    return 0;
}

}  // namespace detail

// Calls on_piece(std::string_view) for each piece, in order; the pieces concatenate to
// `text` exactly (invalid UTF-8 included).
template <typename OnPiece>
void pretokenize(std::string_view text, OnPiece&& on_piece) {
    using detail::classify_at;
    const size_t n = text.size();
    size_t i = 0;
    while (i < n) {
        // Alternatives in the pattern's order: the first that matches at i wins.
        if (text[i] == '\'') {
            if (const size_t len = detail::contraction_length(text, i); len > 0) {
                on_piece(text.substr(i, len));
                i += len;
                continue;
            }
        }
        const detail::ClassedChar first = classify_at(text, i);
        size_t j = i + first.length;
        CharClass run = first.cls;
        if (text[i] == ' ' && j < n) {
            // " ?" before a letter, number or symbol run.
            const detail::ClassedChar second = classify_at(text, j);
            if (second.cls != CharClass::kSpace) {
                run = second.cls;
                j += second.length;
            }
        }
        if (run != CharClass::kSpace) {
            while (j < n) {
                const detail::ClassedChar c = classify_at(text, j);
                if (c.cls != run) break;
                j += c.length;
            }
            on_piece(text.substr(i, j - i));
            i = j;
            continue;
        }
        // \s+(?!\S) backtracks to leave the last space before a non-space character to
        // the next piece (so " word" keeps its space); \s+ takes a lone one.
        size_t last = i;
        size_t k = i;
        while (k < n) {
            const detail::ClassedChar c = classify_at(text, k);
            if (c.cls != CharClass::kSpace) break;
            last = k;
            k += c.length;
        }
        const size_t end = (k == n || last == i) ? k : last;
        on_piece(text.substr(i, end - i));
        i = end;
    }
}

}  // namespace greenmoe

// Unicode for Hugging Face tokenizers: UTF-8 walking, normalization forms and the character
// properties Rust's `char` methods test (the `tokenizers` library is written in Rust).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "greenmoe/text/pretokenize.h"

namespace greenmoe::hf {

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };

// The text with every ill-formed UTF-8 sequence replaced by U+FFFD, one per maximal ill-formed
// subpart, as Rust's String::from_utf8_lossy and Python's decode(errors="replace") do.
// Returns the input unchanged (no copy) when it is valid.
std::string to_valid_utf8(std::string_view text);
bool is_valid_utf8(std::string_view text);

void append_utf8(uint32_t code_point, std::string& out);

// Normalization of valid UTF-8 (utf8proc); throws Error if utf8proc refuses the text.
std::string normalize_unicode(std::string_view text, NormalForm form);

// Appends the lowercase mapping of one character, as Rust's char::to_lowercase: the simple
// mapping, except U+0130 (İ), whose full mapping is two characters.
void append_lowercase(uint32_t code_point, std::string& out);

// Rust's char::is_whitespace: the White_Space property.
bool is_whitespace(uint32_t code_point);
// Rust's char::is_numeric: general categories Nd, Nl, No.
bool is_numeric(uint32_t code_point);
// Rust's char::is_alphanumeric, approximated by general categories L* and N*.
bool is_alphanumeric(uint32_t code_point);
// `tokenizers`' is_punc: ASCII punctuation or a Unicode P* category.
bool is_punctuation(uint32_t code_point);

// Calls f(code_point, byte_offset, byte_length) for each character of valid UTF-8 text.
template <typename F>
void for_each_char(std::string_view text, F&& f) {
    for (size_t i = 0; i < text.size();) {
        const Utf8Char c = decode_utf8(text, i);
        f(c.code_point, i, static_cast<size_t>(c.length));
        i += c.length;
    }
}

}  // namespace greenmoe::hf

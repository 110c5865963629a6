// Python str methods on UTF-8 (see python_str.h).
#include "greenmoe/text/python_str.h"

#include <utf8proc.h>

#include <utility>
#include <vector>

#include "greenmoe/text/hf_unicode.h"

namespace greenmoe {

namespace {

std::vector<uint32_t> code_points(std::string_view text) {
    std::vector<uint32_t> out;
    hf::for_each_char(text, [&](uint32_t cp, size_t, size_t) { out.push_back(cp); });
    return out;
}

bool is_cased(uint32_t cp) {
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
           cat == UTF8PROC_CATEGORY_LT;
}

// Unicode's Case_Ignorable: marks, format characters, modifier letters and symbols, and the
// Word_Break MidLetter / MidNumLet / Single_Quote characters.
bool is_case_ignorable(uint32_t cp) {
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_ME:
        case UTF8PROC_CATEGORY_CF:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_SK:
            return true;
        default:
            break;
    }
    switch (cp) {
        case 0x27:
        case 0x2E:
        case 0x3A:
        case 0xB7:
        case 0x387:
        case 0x5F4:
        case 0x2018:
        case 0x2019:
        case 0x2024:
        case 0x2027:
        case 0xFE13:
        case 0xFE52:
        case 0xFE55:
        case 0xFF07:
        case 0xFF0E:
        case 0xFF1A:
            return true;
        default:
            return false;
    }
}

// CPython's handle_capital_sigma: Σ is final when a cased letter comes before it and none
// after it (case-ignorable characters skipped both ways).
bool final_sigma(const std::vector<uint32_t>& s, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(s[j - 1])) --j;
    if (j == 0 || !is_cased(s[j - 1])) return false;
    size_t k = i + 1;
    while (k < s.size() && is_case_ignorable(s[k])) ++k;
    return k == s.size() || !is_cased(s[k]);
}

// Title case with SpecialCasing's multi-character mappings.
void append_title(uint32_t cp, std::string& out) {
    switch (cp) {
        case 0xDF:
            out += "Ss";
            return;
        case 0x149:
            out += "\xCA\xBCN";
            return;  // ŉ → ʼN
        case 0xFB00:
            out += "Ff";
            return;
        case 0xFB01:
            out += "Fi";
            return;
        case 0xFB02:
            out += "Fl";
            return;
        case 0xFB03:
            out += "Ffi";
            return;
        case 0xFB04:
            out += "Ffl";
            return;
        case 0xFB05:
        case 0xFB06:
            out += "St";
            return;
        default:
            break;
    }
    hf::append_utf8(static_cast<uint32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(cp))),
                    out);
}

// The code point starting at text[i] and its length in bytes; a byte that does not start a
// complete sequence stands for itself, so stripping never changes other text.
std::pair<uint32_t, size_t> code_point_at(std::string_view text, size_t i) {
    const auto b = static_cast<unsigned char>(text[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
    if (i + n > text.size()) n = 1;
    if (n == 1) return {b, 1};
    uint32_t c = b & (0xFFu >> (n + 1));
    for (size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    return {c, n};
}

}  // namespace

bool python_isspace(uint32_t cp) {
    return hf::is_whitespace(cp) || (cp >= 0x1C && cp <= 0x1F);
}

std::string python_lstrip(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        const auto [c, n] = code_point_at(text, i);
        if (!python_isspace(c)) break;
        i += n;
    }
    return std::string(text.substr(i));
}

std::string python_strip(std::string_view text) {
    const std::string s = python_lstrip(text);
    size_t end = 0;  // where the last non-space code point ends
    for (size_t i = 0; i < s.size();) {
        const auto [c, n] = code_point_at(s, i);
        i += n;
        if (!python_isspace(c)) end = i;
    }
    return s.substr(0, end);
}

int64_t python_len(std::string_view text) {
    int64_t n = 0;
    for (const unsigned char c : text) n += (c & 0xC0) != 0x80;
    return n;
}

std::string python_capitalize(std::string_view text) {
    const std::vector<uint32_t> s = code_points(hf::to_valid_utf8(text));
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (i == 0) {
            append_title(s[i], out);
        } else if (s[i] == 0x3A3) {
            out += final_sigma(s, i) ? "\xCF\x82" : "\xCF\x83";  // ς, σ
        } else {
            hf::append_lowercase(s[i], out);
        }
    }
    return out;
}

}  // namespace greenmoe

// Normalizers as `tokenizers` defines them (normalizers/*.rs).
#include "greenmoe/text/hf_normalizer.h"

#include <utf8proc.h>

namespace greenmoe::hf {

Normalizer Normalizer::parse(const JsonNode& node) {
    Normalizer normalizer;
    if (!node.is_null()) normalizer.add(node);
    return normalizer;
}

void Normalizer::add(const JsonNode& node) {
    const std::string type = node.type();
    if (type == "Sequence") {
        const JsonNode list = node["normalizers"];
        list.expect_array();
        for (size_t i = 0; i < list.size(); ++i) add(list[i]);
    } else if (type == "Prepend") {
        steps_.push_back({Kind::kPrepend, node["prepend"].string(), {}});
    } else if (type == "Replace") {
        steps_.push_back(
            {Kind::kReplace, node["content"].string(), Pattern::parse(node["pattern"])});
    } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
        Step step{Kind::kUnicode, {}, {}};
        step.form = type == "NFC"    ? NormalForm::kNfc
                    : type == "NFD"  ? NormalForm::kNfd
                    : type == "NFKC" ? NormalForm::kNfkc
                                     : NormalForm::kNfkd;
        steps_.push_back(std::move(step));
    } else if (type == "Lowercase") {
        steps_.push_back({Kind::kLowercase, {}, {}});
    } else if (type == "Strip") {
        Step step{Kind::kStrip, {}, {}};
        step.left = node.boolean_or("strip_left", true);
        step.right = node.boolean_or("strip_right", true);
        steps_.push_back(std::move(step));
    } else if (type == "StripAccents") {
        steps_.push_back({Kind::kStripAccents, {}, {}});
    } else if (type == "BertNormalizer") {
        Step step{Kind::kBert, {}, {}};
        step.clean_text = node.boolean_or("clean_text", true);
        step.chinese_chars = node.boolean_or("handle_chinese_chars", true);
        step.lowercase = node.boolean_or("lowercase", true);
        // strip_accents null means: strip them when lowercasing.
        step.strip_accents = node.boolean_or("strip_accents", step.lowercase);
        steps_.push_back(std::move(step));
    } else {
        unsupported(node, "normalizer", type,
                    "Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip, "
                    "StripAccents and BertNormalizer");
    }
}

namespace {

std::string lowercase(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for_each_char(text, [&](uint32_t cp, size_t, size_t) { append_lowercase(cp, out); });
    return out;
}

std::string strip(std::string_view text, bool left, bool right) {
    size_t begin = 0, end = text.size();
    if (left) {
        while (begin < end) {
            const Utf8Char c = decode_utf8(text, begin);
            if (!is_whitespace(c.code_point)) break;
            begin += c.length;
        }
    }
    if (right) {
        while (end > begin) {
            size_t start = end - 1;  // back to the first byte of the last character
            while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
                --start;
            }
            if (!is_whitespace(decode_utf8(text, start).code_point)) break;
            end = start;
        }
    }
    return std::string(text.substr(begin, end - begin));
}

// Removes nonspacing marks (Mn), as `tokenizers`' StripAccents does; meant to follow NFD.
std::string strip_accents(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for_each_char(text, [&](uint32_t cp, size_t offset, size_t length) {
        if (utf8proc_category(static_cast<utf8proc_int32_t>(cp)) != UTF8PROC_CATEGORY_MN) {
            out.append(text.substr(offset, length));
        }
    });
    return out;
}

// The CJK ideograph blocks BERT surrounds with spaces.
bool is_chinese_char(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// BERT's control characters: Unicode "other" categories except tab, newline, return.
bool is_bert_control(uint32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return false;
    const auto c = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CN ||
           c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CS;
}

std::string bert_normalize(std::string_view input, const auto& step) {
    std::string text;
    text.reserve(input.size());
    for_each_char(input, [&](uint32_t cp, size_t offset, size_t length) {
        if (step.clean_text) {
            if (cp == 0 || cp == 0xFFFD || is_bert_control(cp)) return;
            if (is_whitespace(cp)) {
                text.push_back(' ');
                return;
            }
        }
        if (step.chinese_chars && is_chinese_char(cp)) {
            text.push_back(' ');
            text.append(input.substr(offset, length));
            text.push_back(' ');
            return;
        }
        text.append(input.substr(offset, length));
    });
    if (step.strip_accents) text = strip_accents(normalize_unicode(text, NormalForm::kNfd));
    if (step.lowercase) text = lowercase(text);
    return text;
}

}  // namespace

std::string Normalizer::apply(std::string_view input) const {
    std::string text(input);
    for (const Step& step : steps_) {
        switch (step.kind) {
            case Kind::kPrepend:
                if (!text.empty()) text.insert(0, step.text);
                break;
            case Kind::kReplace:
                text = replace_all(step.pattern, text, step.text);
                break;
            case Kind::kUnicode:
                text = normalize_unicode(text, step.form);
                break;
            case Kind::kLowercase:
                text = lowercase(text);
                break;
            case Kind::kStrip:
                text = strip(text, step.left, step.right);
                break;
            case Kind::kStripAccents:
                text = strip_accents(text);
                break;
            case Kind::kBert:
                text = bert_normalize(text, step);
                break;
        }
    }
    return text;
}

}  // namespace greenmoe::hf

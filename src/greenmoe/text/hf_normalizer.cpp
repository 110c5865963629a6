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
    } else {
        unsupported(node, "normalizer", type,
                    "Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip and "
                    "StripAccents");
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
        }
    }
    return text;
}

}  // namespace greenmoe::hf

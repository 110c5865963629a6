// Decoders as `tokenizers` defines them (decoders/*.rs): each maps the list of token strings
// to a new list; the strings left at the end are concatenated.
#include "greenmoe/text/hf_decoder.h"

#include <unordered_map>

#include "greenmoe/text/hf_unicode.h"

namespace greenmoe::hf {

Decoder Decoder::parse(const JsonNode& node) {
    Decoder decoder;
    if (!node.is_null()) {
        decoder.present_ = true;
        decoder.add(node);
    }
    return decoder;
}

void Decoder::add(const JsonNode& node) {
    const std::string type = node.type();
    if (type == "Sequence") {
        const JsonNode list = node["decoders"];
        list.expect_array();
        for (size_t i = 0; i < list.size(); ++i) add(list[i]);
        return;
    }
    Step step{};
    if (type == "ByteLevel") {
        step.kind = Kind::kByteLevel;
    } else if (type == "Metaspace") {
        step.kind = Kind::kMetaspace;
        step.text = node.string_or("replacement", "\u2581");
        step.scheme = parse_prepend_scheme(node);
    } else if (type == "ByteFallback") {
        step.kind = Kind::kByteFallback;
    } else if (type == "Fuse") {
        step.kind = Kind::kFuse;
    } else if (type == "Strip") {
        step.kind = Kind::kStrip;
        step.text = node["content"].string();
        size_t chars = 0;
        for_each_char(step.text, [&](uint32_t, size_t, size_t) { ++chars; });
        check(chars == 1, "{}/content: expected one character", node.where());
        const long long start = node.integer_or("start", 0), stop = node.integer_or("stop", 0);
        check(start >= 0 && stop >= 0, "{}: start and stop must be ≥ 0", node.where());
        step.start = static_cast<size_t>(start);
        step.stop = static_cast<size_t>(stop);
    } else if (type == "Replace") {
        step.kind = Kind::kReplace;
        step.pattern = Pattern::parse(node["pattern"]);
        step.text = node["content"].string();
    } else if (type == "WordPiece") {
        step.kind = Kind::kWordPiece;
        step.text = node.string_or("prefix", "##");
        step.cleanup = node.boolean_or("cleanup", true);
    } else if (type == "BPEDecoder") {
        step.kind = Kind::kBpeSuffix;
        step.text = node.string_or("suffix", "</w>");
    } else {
        unsupported(node, "decoder", type,
                    "Sequence, ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, "
                    "BPEDecoder and WordPiece");
    }
    steps_.push_back(std::move(step));
}

namespace {

// The characters of a token, as (offset, length) byte ranges.
std::vector<std::pair<size_t, size_t>> chars_of(const std::string& token) {
    std::vector<std::pair<size_t, size_t>> chars;
    for_each_char(
        token, [&](uint32_t, size_t offset, size_t length) { chars.emplace_back(offset, length); });
    return chars;
}

const std::unordered_map<std::string, unsigned char>& byte_level_bytes() {
    static const auto* map = [] {
        auto* m = new std::unordered_map<std::string, unsigned char>();
        const auto& chars = byte_level_chars();
        for (int b = 0; b < 256; ++b)
            m->emplace(chars[static_cast<size_t>(b)], static_cast<unsigned char>(b));
        return m;
    }();
    return *map;
}

// "<0xNN>" → NN, else -1.
int byte_token_value(const std::string& token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return -1;
    int value = 0;
    for (size_t i = 3; i < 5; ++i) {
        const char c = token[i];
        int digit;
        if (c >= '0' && c <= '9') {
            digit = c - '0';
        } else if (c >= 'A' && c <= 'F') {
            digit = c - 'A' + 10;
        } else if (c >= 'a' && c <= 'f') {
            digit = c - 'a' + 10;
        } else {
            return -1;
        }
        value = value * 16 + digit;
    }
    return value;
}

// BERT's detokenization of spaces before punctuation and contractions, on each token.
std::string wordpiece_cleanup(std::string text) {
    static const std::pair<const char*, const char*> kRules[] = {
        {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
        {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
        {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : kRules) {
        const Pattern pattern{from, nullptr};
        text = replace_all(pattern, text, to);
    }
    return text;
}

}  // namespace

std::vector<std::string> Decoder::apply(const Step& step, std::vector<std::string> tokens) {
    switch (step.kind) {
        case Kind::kByteLevel: {
            // Every token's characters back to bytes; a token with a character outside the
            // table is taken as its own UTF-8. Invalid UTF-8 in the result becomes U+FFFD.
            const auto& bytes = byte_level_bytes();
            std::string joined;
            for (const std::string& token : tokens) {
                std::string decoded;
                bool all_mapped = true;
                for (const auto& [offset, length] : chars_of(token)) {
                    const auto it = bytes.find(token.substr(offset, length));
                    if (it == bytes.end()) {
                        all_mapped = false;
                        break;
                    }
                    decoded.push_back(static_cast<char>(it->second));
                }
                joined += all_mapped ? decoded : token;
            }
            return {to_valid_utf8(joined)};
        }
        case Kind::kMetaspace: {
            for (size_t i = 0; i < tokens.size(); ++i) {
                std::string out;
                const std::string& token = tokens[i];
                for (size_t at = 0; at < token.size();) {
                    if (token.compare(at, step.text.size(), step.text) == 0) {
                        if (!(i == 0 && step.scheme != PrependScheme::kNever)) out.push_back(' ');
                        at += step.text.size();
                    } else {
                        out.push_back(token[at++]);
                    }
                }
                tokens[i] = std::move(out);
            }
            return tokens;
        }
        case Kind::kByteFallback: {
            std::vector<std::string> out;
            std::string pending;
            const auto flush = [&] {
                if (pending.empty()) return;
                if (is_valid_utf8(pending)) {
                    out.push_back(pending);
                } else {
                    for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
                }
                pending.clear();
            };
            for (std::string& token : tokens) {
                if (const int b = byte_token_value(token); b >= 0) {
                    pending.push_back(static_cast<char>(b));
                } else {
                    flush();
                    out.push_back(std::move(token));
                }
            }
            flush();
            return out;
        }
        case Kind::kFuse: {
            std::string joined;
            for (const std::string& token : tokens) joined += token;
            return {joined};
        }
        case Kind::kStrip: {
            for (std::string& token : tokens) {
                const auto chars = chars_of(token);
                const auto is_content = [&](size_t k) {
                    return token.compare(chars[k].first, chars[k].second, step.text) == 0;
                };
                size_t begin = 0;
                for (size_t k = 0; k < step.start && k < chars.size() && is_content(k); ++k) {
                    begin = k + 1;
                }
                size_t end = chars.size();
                for (size_t k = 0; k < step.stop && k < chars.size(); ++k) {
                    const size_t index = chars.size() - k - 1;
                    if (!is_content(index)) break;
                    end = index;
                }
                if (end <= begin) {
                    token.clear();
                } else {
                    const size_t from = chars[begin].first;
                    const size_t to = end == chars.size() ? token.size() : chars[end].first;
                    token = token.substr(from, to - from);
                }
            }
            return tokens;
        }
        case Kind::kReplace:
            for (std::string& token : tokens) token = replace_all(step.pattern, token, step.text);
            return tokens;
        case Kind::kWordPiece:
            for (size_t i = 0; i < tokens.size(); ++i) {
                std::string& token = tokens[i];
                if (i != 0) {
                    if (token.starts_with(step.text)) {
                        token.erase(0, step.text.size());
                    } else {
                        std::string spaced(1, ' ');
                        spaced += token;
                        token.swap(spaced);
                    }
                }
                if (step.cleanup) token = wordpiece_cleanup(std::move(token));
            }
            return tokens;
        case Kind::kBpeSuffix:
            for (size_t i = 0; i < tokens.size(); ++i) {
                Pattern suffix{step.text, nullptr};
                tokens[i] = replace_all(suffix, tokens[i], i + 1 == tokens.size() ? "" : " ");
            }
            return tokens;
    }
    return tokens;
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
    std::string text;
    if (!present_) {
        for (size_t i = 0; i < tokens.size(); ++i) {
            if (i > 0) text.push_back(' ');
            text += tokens[i];
        }
        return text;
    }
    for (const Step& step : steps_) tokens = apply(step, std::move(tokens));
    for (const std::string& token : tokens) text += token;
    return text;
}

}  // namespace greenmoe::hf

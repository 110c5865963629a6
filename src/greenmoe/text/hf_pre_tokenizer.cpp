// Pre-tokenizers as `tokenizers` defines them (pre_tokenizers/*.rs).
#include "greenmoe/text/hf_pre_tokenizer.h"

#include "greenmoe/text/hf_unicode.h"

namespace greenmoe::hf {

namespace {

// The patterns `tokenizers` compiles for ByteLevel (GPT-2's) and for Whitespace.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kWordPattern = R"(\w+|[^\w\s]+)";

}  // namespace

const std::array<std::string, 256>& byte_level_chars() {
    static const std::array<std::string, 256> table = [] {
        // Printable Latin-1 bytes stand for themselves; the other 68 bytes are shifted to
        // U+0100 onwards in byte order (GPT-2's bytes_to_unicode).
        std::array<std::string, 256> chars;
        uint32_t next = 256;
        for (uint32_t b = 0; b < 256; ++b) {
            const bool printable =
                (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            append_utf8(printable ? b : next++, chars[b]);
        }
        return chars;
    }();
    return table;
}

PrependScheme parse_prepend_scheme(const JsonNode& node) {
    if (node.has("prepend_scheme")) {
        const std::string scheme = node["prepend_scheme"].string();
        if (scheme == "always") return PrependScheme::kAlways;
        if (scheme == "first") return PrependScheme::kFirst;
        if (scheme == "never") return PrependScheme::kNever;
        fail("{}/prepend_scheme: expected \"always\", \"first\" or \"never\", not {:?}",
             node.where(), scheme);
    }
    return node.boolean_or("add_prefix_space", true) ? PrependScheme::kAlways
                                                     : PrependScheme::kNever;
}

namespace {

std::string single_char(const JsonNode& node, const char* key, const char* fallback) {
    const std::string value = node.string_or(key, fallback);
    size_t length = 0;
    for_each_char(value, [&](uint32_t, size_t, size_t) { ++length; });
    check(length == 1 && is_valid_utf8(value), "{}/{}: expected one character, not {:?}",
          node.where(), key, value);
    return value;
}

}  // namespace

PreTokenizer PreTokenizer::parse(const JsonNode& node) {
    PreTokenizer pre;
    if (!node.is_null()) pre.add(node);
    return pre;
}

void PreTokenizer::add(const JsonNode& node) {
    const std::string type = node.type();
    Step step{};
    if (type == "Sequence") {
        const JsonNode list = node["pretokenizers"];
        list.expect_array();
        for (size_t i = 0; i < list.size(); ++i) add(list[i]);
        return;
    } else if (type == "ByteLevel") {
        step.kind = Kind::kByteLevel;
        step.add_prefix_space = node.boolean_or("add_prefix_space", true);
        step.use_regex = node.boolean_or("use_regex", true);
        if (step.use_regex && !gpt2_regex_) {
            gpt2_regex_ = std::make_shared<const Regex>(kGpt2Pattern, node.where());
        }
    } else if (type == "Split") {
        step.kind = Kind::kSplit;
        step.pattern = Pattern::parse(node["pattern"]);
        step.behavior = parse_split_behavior(node["behavior"].string(), node.where() + "/behavior");
        step.invert = node.boolean_or("invert", false);
    } else if (type == "Metaspace") {
        step.kind = Kind::kMetaspace;
        step.replacement = single_char(node, "replacement", "\u2581");
        step.scheme = parse_prepend_scheme(node);
        step.split = node.boolean_or("split", true);
    } else if (type == "Digits") {
        step.kind = Kind::kDigits;
        step.individual_digits = node.boolean_or("individual_digits", false);
    } else if (type == "Whitespace") {
        step.kind = Kind::kWhitespace;
        if (!word_regex_) word_regex_ = std::make_shared<const Regex>(kWordPattern, node.where());
    } else if (type == "WhitespaceSplit") {
        step.kind = Kind::kWhitespaceSplit;
    } else if (type == "Punctuation") {
        step.kind = Kind::kPunctuation;
        step.behavior = parse_split_behavior(node.string_or("behavior", "Isolated"),
                                             node.where() + "/behavior");
    } else if (type == "BertPreTokenizer") {
        step.kind = Kind::kBert;
    } else if (type == "CharDelimiterSplit") {
        step.kind = Kind::kCharDelimiter;
        step.replacement = single_char(node, "delimiter", "");
    } else {
        unsupported(node, "pre-tokenizer", type,
                    "Sequence, ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, "
                    "Punctuation, BertPreTokenizer and CharDelimiterSplit");
    }
    steps_.push_back(std::move(step));
}

namespace {

void emit(const Piece& parent, std::string_view text, const std::vector<Range>& ranges,
          std::vector<Piece>& out) {
    for (const Range& r : ranges) {
        if (r.end == r.begin) continue;
        out.push_back({std::string(text.substr(r.begin, r.end - r.begin)),
                       parent.at_start && r.begin == 0, -1});
    }
}

std::string to_byte_level(std::string_view text) {
    const auto& chars = byte_level_chars();
    std::string out;
    out.reserve(text.size() * 2);
    for (const char c : text) out.append(chars[static_cast<unsigned char>(c)]);
    return out;
}

}  // namespace

void PreTokenizer::apply_step(const Step& step, const Piece& piece, std::vector<Piece>& out) const {
    const std::string_view text = piece.text;
    switch (step.kind) {
        case Kind::kByteLevel: {
            std::string prefixed;
            std::string_view source = text;
            if (step.add_prefix_space && !text.starts_with(' ')) {
                prefixed = " ";
                prefixed += piece.text;
                source = prefixed;
            }
            if (!step.use_regex) {
                out.push_back({to_byte_level(source), piece.at_start, -1});
                return;
            }
            for (const Segment& s : regex_segments(*gpt2_regex_, source)) {
                if (s.end == s.begin) continue;
                out.push_back({to_byte_level(source.substr(s.begin, s.end - s.begin)),
                               piece.at_start && s.begin == 0, -1});
            }
            return;
        }
        case Kind::kSplit: {
            std::vector<Segment> segments = step.pattern.segments(text);
            if (step.invert) invert_segments(segments);
            emit(piece, text, apply_split_behavior(segments, step.behavior), out);
            return;
        }
        case Kind::kMetaspace: {
            std::string replaced;
            replaced.reserve(text.size() + 3);
            for (const char c : text) {
                if (c == ' ') {
                    replaced.append(step.replacement);
                } else {
                    replaced.push_back(c);
                }
            }
            const bool needs_prefix = !std::string_view(replaced).starts_with(step.replacement);
            if (needs_prefix && (step.scheme == PrependScheme::kAlways ||
                                 (step.scheme == PrependScheme::kFirst && piece.at_start))) {
                replaced.insert(0, step.replacement);
            }
            if (!step.split) {
                out.push_back({std::move(replaced), piece.at_start, -1});
                return;
            }
            Piece whole{std::move(replaced), piece.at_start, -1};
            emit(whole, whole.text,
                 apply_split_behavior(literal_segments(step.replacement, whole.text),
                                      SplitBehavior::kMergedWithNext),
                 out);
            return;
        }
        case Kind::kDigits:
            emit(piece, text,
                 apply_split_behavior(char_segments(text, is_numeric),
                                      step.individual_digits ? SplitBehavior::kIsolated
                                                             : SplitBehavior::kContiguous),
                 out);
            return;
        case Kind::kWhitespace: {
            std::vector<Segment> segments = regex_segments(*word_regex_, text);
            invert_segments(segments);
            emit(piece, text, apply_split_behavior(segments, SplitBehavior::kRemoved), out);
            return;
        }
        case Kind::kWhitespaceSplit:
            emit(piece, text,
                 apply_split_behavior(char_segments(text, is_whitespace), SplitBehavior::kRemoved),
                 out);
            return;
        case Kind::kPunctuation:
            emit(piece, text,
                 apply_split_behavior(char_segments(text, is_punctuation), step.behavior), out);
            return;
        case Kind::kBert: {
            // Whitespace removed, then every punctuation character a piece of its own.
            std::vector<Piece> words;
            emit(piece, text,
                 apply_split_behavior(char_segments(text, is_whitespace), SplitBehavior::kRemoved),
                 words);
            for (const Piece& word : words) {
                emit(word, word.text,
                     apply_split_behavior(char_segments(word.text, is_punctuation),
                                          SplitBehavior::kIsolated),
                     out);
            }
            return;
        }
        case Kind::kCharDelimiter: {
            emit(piece, text,
                 apply_split_behavior(literal_segments(step.replacement, text),
                                      SplitBehavior::kRemoved),
                 out);
            return;
        }
    }
}

void PreTokenizer::apply(std::vector<Piece>& pieces) const {
    std::vector<Piece> next;
    for (const Step& step : steps_) {
        next.clear();
        next.reserve(pieces.size() * 2);
        for (Piece& piece : pieces) {
            if (piece.token >= 0) {
                next.push_back(std::move(piece));
            } else {
                apply_step(step, piece, next);
            }
        }
        pieces.swap(next);
    }
}

}  // namespace greenmoe::hf

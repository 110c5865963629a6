// How `tokenizers` cuts a string by a pattern: the pattern's matches and the gaps between
// them as segments, then a delimiter behaviour deciding what each match becomes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "greenmoe/text/hf_regex.h"

namespace greenmoe::hf {

// What happens to the matched delimiters (SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Parses "Removed", "Isolated", … ; throws Error naming `where` for any other name.
SplitBehavior parse_split_behavior(const std::string& name, const std::string& where);

struct Segment {
    size_t begin, end;
    bool is_match;
};

// The whole text as alternating gap / match segments (an empty text: one empty gap).
std::vector<Segment> regex_segments(const Regex& regex, std::string_view text);
std::vector<Segment> literal_segments(std::string_view literal, std::string_view text);
// Each character for which is_match(code_point) holds is a match of its own.
template <typename Predicate>
std::vector<Segment> char_segments(std::string_view text, Predicate&& is_match);

// A `pattern` of tokenizer.json: {"String": literal} or {"Regex": Oniguruma pattern}.
class JsonNode;
struct Pattern {
    std::string literal;
    std::shared_ptr<const Regex> regex;  // null for a literal
    std::vector<Segment> segments(std::string_view text) const {
        return regex ? regex_segments(*regex, text) : literal_segments(literal, text);
    }
    static Pattern parse(const JsonNode& node);
};

// Text with every match of `pattern` replaced by `content` (Replace normalizer and decoder).
std::string replace_all(const Pattern& pattern, std::string_view text, std::string_view content);

// Flips is_match (the `invert` option).
void invert_segments(std::vector<Segment>& segments);

// The byte ranges the behaviour keeps, in order; empty ranges included (callers drop them).
struct Range {
    size_t begin, end;
};
std::vector<Range> apply_split_behavior(const std::vector<Segment>& segments,
                                        SplitBehavior behavior);

}  // namespace greenmoe::hf

#include "greenmoe/text/hf_unicode.h"

namespace greenmoe::hf {

template <typename Predicate>
std::vector<Segment> char_segments(std::string_view text, Predicate&& is_match) {
    std::vector<Segment> segments;
    if (text.empty()) {
        segments.push_back({0, 0, false});
        return segments;
    }
    size_t gap_start = 0;
    for_each_char(text, [&](uint32_t cp, size_t offset, size_t length) {
        if (!is_match(cp)) return;
        if (gap_start < offset) segments.push_back({gap_start, offset, false});
        segments.push_back({offset, offset + length, true});
        gap_start = offset + length;
    });
    if (gap_start < text.size()) segments.push_back({gap_start, text.size(), false});
    return segments;
}

}  // namespace greenmoe::hf

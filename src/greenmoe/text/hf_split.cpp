// Segments and delimiter behaviours, as NormalizedString::split in `tokenizers` defines them.
#include "greenmoe/text/hf_split.h"

#include <algorithm>

#include "greenmoe/core/error.h"
#include "greenmoe/text/hf_json.h"

namespace greenmoe::hf {

SplitBehavior parse_split_behavior(const std::string& name, const std::string& where) {
    if (name == "Removed") return SplitBehavior::kRemoved;
    if (name == "Isolated") return SplitBehavior::kIsolated;
    if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
    if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
    if (name == "Contiguous") return SplitBehavior::kContiguous;
    fail(
        "{}: unknown split behavior {:?} (expected Removed, Isolated, MergedWithPrevious, "
        "MergedWithNext or Contiguous)",
        where, name);
}

namespace {

template <typename Matches>
std::vector<Segment> segments_from_matches(const Matches& matches, size_t text_size) {
    std::vector<Segment> segments;
    if (text_size == 0) {
        segments.push_back({0, 0, false});
        return segments;
    }
    size_t previous = 0;
    for (const auto& m : matches) {
        if (previous != m.begin) segments.push_back({previous, m.begin, false});
        segments.push_back({m.begin, m.end, true});
        previous = m.end;
    }
    if (previous != text_size) segments.push_back({previous, text_size, false});
    return segments;
}

}  // namespace

std::vector<Segment> regex_segments(const Regex& regex, std::string_view text) {
    if (text.empty()) return segments_from_matches(std::vector<Regex::Match>{}, 0);
    return segments_from_matches(regex.find_all(text), text.size());
}

std::vector<Segment> literal_segments(std::string_view literal, std::string_view text) {
    std::vector<Regex::Match> matches;
    if (!literal.empty()) {
        for (size_t at = text.find(literal); at != std::string_view::npos;
             at = text.find(literal, at + literal.size())) {
            matches.push_back({at, at + literal.size()});
        }
    }
    return segments_from_matches(matches, text.size());
}

Pattern Pattern::parse(const JsonNode& node) {
    node.expect_object();
    Pattern pattern;
    if (node.has("String")) {
        pattern.literal = node["String"].string();
    } else if (node.has("Regex")) {
        pattern.regex = std::make_shared<const Regex>(node["Regex"].string(), node.where());
    } else {
        fail("{}: expected a pattern {{\"String\": …}} or {{\"Regex\": …}}", node.where());
    }
    return pattern;
}

std::string replace_all(const Pattern& pattern, std::string_view text, std::string_view content) {
    std::string out;
    out.reserve(text.size());
    for (const Segment& s : pattern.segments(text)) {
        if (s.is_match) {
            out.append(content);
        } else {
            out.append(text.substr(s.begin, s.end - s.begin));
        }
    }
    return out;
}

void invert_segments(std::vector<Segment>& segments) {
    for (Segment& s : segments) s.is_match = !s.is_match;
}

std::vector<Range> apply_split_behavior(const std::vector<Segment>& segments,
                                        SplitBehavior behavior) {
    std::vector<Range> ranges;
    ranges.reserve(segments.size());
    switch (behavior) {
        case SplitBehavior::kIsolated:
            for (const Segment& s : segments) ranges.push_back({s.begin, s.end});
            break;
        case SplitBehavior::kRemoved:
            for (const Segment& s : segments) {
                if (!s.is_match) ranges.push_back({s.begin, s.end});
            }
            break;
        case SplitBehavior::kContiguous: {
            bool previous_match = false;
            for (const Segment& s : segments) {
                if (s.is_match == previous_match && !ranges.empty()) {
                    ranges.back().end = s.end;
                } else {
                    ranges.push_back({s.begin, s.end});
                }
                previous_match = s.is_match;
            }
            break;
        }
        case SplitBehavior::kMergedWithPrevious: {
            bool previous_match = false;
            for (const Segment& s : segments) {
                if (s.is_match && !previous_match && !ranges.empty()) {
                    ranges.back().end = s.end;
                } else {
                    ranges.push_back({s.begin, s.end});
                }
                previous_match = s.is_match;
            }
            break;
        }
        case SplitBehavior::kMergedWithNext: {
            // Walked from the end: a match joins the piece that follows it.
            bool previous_match = false;
            for (size_t i = segments.size(); i-- > 0;) {
                const Segment& s = segments[i];
                if (s.is_match && !previous_match && !ranges.empty()) {
                    ranges.back().begin = s.begin;
                } else {
                    ranges.push_back({s.begin, s.end});
                }
                previous_match = s.is_match;
            }
            std::reverse(ranges.begin(), ranges.end());
            break;
        }
    }
    return ranges;
}

}  // namespace greenmoe::hf

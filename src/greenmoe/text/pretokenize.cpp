// Code point classification for the pre-tokenizer (see pretokenize.h).
#include "greenmoe/text/pretokenize.h"

#include <algorithm>
#include <iterator>

namespace greenmoe {

namespace {
#include "greenmoe/text/unicode_tables.inc"
}  // namespace

CharClass char_class(uint32_t code_point) {
    if (code_point < 128) return detail::kAsciiClasses[code_point];
    const auto* end = std::end(kCodePointRanges);
    // First range whose last >= code_point; the code point is in it if first <= code_point.
    const auto* it =
        std::lower_bound(std::begin(kCodePointRanges), end, code_point,
                         [](const CodePointRange& range, uint32_t cp) { return range.last < cp; });
    if (it != end && it->first <= code_point) return it->cls;
    return CharClass::kOther;
}

const char* unicode_version() {
    return kUnicodeVersion;
}

}  // namespace greenmoe

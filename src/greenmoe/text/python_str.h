// Python's str methods that benchmark-task text processing calls (HellaSwag's preprocess,
// the harness's task utils), on UTF-8 text, with Python 3's Unicode rules: the same text
// greenmoe builds as the Python code it follows, for any input, not only ASCII.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace greenmoe {

// str.isspace() of one code point: White_Space, and the separators U+001C..U+001F.
bool python_isspace(uint32_t code_point);
// str.strip() and str.lstrip() with no argument. Only spaces go: a byte that is not valid
// UTF-8 is kept as it is.
std::string python_strip(std::string_view text);
std::string python_lstrip(std::string_view text);
// len() of the str: code points (UTF-8 lead bytes).
int64_t python_len(std::string_view text);
// str.capitalize() (Python 3.8+): the first character in title case, the rest in lower case
// (full case mappings: "ß" → "Ss", "İ" → "i̇"; a capital sigma ending a word → "ς").
std::string python_capitalize(std::string_view text);

}  // namespace greenmoe

// Python's str methods that benchmark-task text processing calls (HellaSwag's preprocess,
// the harness's task utils), on UTF-8 text, with Python 3's Unicode rules: the same text
// greenmoe builds as the Python code it follows, for any input, not only ASCII.
#pragma once

#include <string>
#include <string_view>

namespace greenmoe {

// str.isspace() of one code point: White_Space, and the separators U+001C..U+001F.
bool python_isspace(uint32_t code_point);
// str.strip() with no argument.
std::string python_strip(std::string_view text);
// str.capitalize() (Python 3.8+): the first character in title case, the rest in lower case
// (full case mappings: "ß" → "Ss", "İ" → "i̇"; a capital sigma ending a word → "ς").
std::string python_capitalize(std::string_view text);

}  // namespace greenmoe

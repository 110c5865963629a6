// Python's str.capitalize and str.strip on Unicode text, against what CPython 3.11 returns.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "greenmoe/eval/hellaswag_data.h"
#include "greenmoe/text/python_str.h"

namespace greenmoe {
namespace {

TEST(PythonStr, CapitalizeAsCPython) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"hello World", "Hello world"},
        {"ßtraße", "Sstraße"},
        {"ǆemal", "ǅemal"},
        {"ΟΔΟΣ ΣΟΦΟΣ", "Οδος σοφος"},
        {"ΣΑΣ.", "Σας."},
        {"İSTANBUL", "İstanbul"},
        {"éCOLE", "École"},
        {"ﬁne", "Fine"},
        {"", ""},
        {" leading", " leading"},
        {"ŉ", "ʼN"},
        {"AΣ'Σ", "Aσ'ς"},
        {"Σ", "Σ"},
    };
    for (const auto& [in, want] : cases) EXPECT_EQ(python_capitalize(in), want) << in;
}

TEST(PythonStr, StripAsCPython) {
    EXPECT_EQ(python_strip("\u3000\x1c text \u0085\u00a0"), "text");
    EXPECT_EQ(python_strip("\u200b x \u200b"), "\u200b x \u200b");  // not a space in Python
    EXPECT_EQ(python_strip("  "), "");
    EXPECT_EQ(python_strip("\x1f\x1e"), "");
    EXPECT_EQ(python_strip("a\u2003"), "a");
}

// HellaSwag's preprocess strips as Python does: Unicode spaces at the edges go.
TEST(PythonStr, HellaSwagPreprocessStripsUnicodeSpaces) {
    EXPECT_EQ(hellaswag_preprocess("\u00a0A man [title] sits.\u3000"), "A man. sits.");
}

}  // namespace
}  // namespace greenmoe

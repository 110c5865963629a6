// Regular expressions with the semantics of the Hugging Face `tokenizers` library, which
// compiles its patterns with Oniguruma (the onig crate: default syntax, UTF-8, no options).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace greenmoe::hf {

// A compiled pattern. Searching is thread-safe: a search keeps its state on its own.
class Regex {
  public:
    // Throws Error quoting Oniguruma's message; `where` names the file and JSON path.
    Regex(std::string_view pattern, const std::string& where);
    ~Regex();
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    struct Match {
        size_t begin, end;
    };
    // Non-overlapping matches, left to right, as the onig crate's find_iter gives them: an
    // empty match right where the previous match ended is skipped by one character.
    std::vector<Match> find_all(std::string_view text) const;
    const std::string& pattern() const { return pattern_; }

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string pattern_;
};

}  // namespace greenmoe::hf

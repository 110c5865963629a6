// The one exception type greenmoe throws for bad input or failed I/O, and helpers to raise it.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace greenmoe {

// Carries a complete, user-facing message that names the file, tensor or option at
// fault and what was expected. main() prints it on one line and exits non-zero.
class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
    throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Like assert, but always on and throwing Error: for checks on data read from outside.
template <typename... Args>
void check(bool condition, fmt::format_string<Args...> format, Args&&... args) {
    if (!condition) throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace greenmoe

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

// A command line that cannot work: an option value out of its range or not one of its
// choices, options that need or exclude each other. main() prints it like any Error but
// exits with status 2 (usage) instead of 1 (bad input data, failed I/O).
class UsageError : public Error {
  public:
    using Error::Error;
};

template <typename... Args>
[[noreturn]] void usage_fail(fmt::format_string<Args...> format, Args&&... args) {
    throw UsageError(fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
void usage_check(bool condition, fmt::format_string<Args...> format, Args&&... args) {
    if (!condition) throw UsageError(fmt::format(format, std::forward<Args>(args)...));
}

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

// Typed reading of config.json keys with messages that name the file and the key.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "greenmoe/core/error.h"

namespace greenmoe::hf {

class ConfigReader {
  public:
    ConfigReader(const nlohmann::json& j, std::filesystem::path source)
        : j_(j), source_(std::move(source)) {
        check(j_.is_object(), "{}: expected a JSON object, got {}", source_.string(),
              j_.type_name());
    }

    const nlohmann::json& json() const { return j_; }
    const std::filesystem::path& source() const { return source_; }
    // True when the key is present and not null.
    bool has(const char* key) const {
        const auto it = j_.find(key);
        return it != j_.end() && !it->is_null();
    }

    int integer(const char* key) const {
        const auto& v = at(key);
        check(v.is_number_integer(), "{}: '{}' must be an integer, got {}", source_.string(), key,
              v.dump());
        // Refused rather than wrapped: 4294967297 must not read as 1.
        const bool fits = v.is_number_unsigned() ? std::in_range<int>(v.get<uint64_t>())
                                                 : std::in_range<int>(v.get<int64_t>());
        check(fits, "{}: '{}' is {}, out of the range of a 32-bit integer", source_.string(), key,
              v.dump());
        return v.get<int>();
    }
    int integer(const char* key, int fallback) const { return has(key) ? integer(key) : fallback; }
    int positive(const char* key) const {
        const int v = integer(key);
        check(v > 0, "{}: '{}' must be positive, got {}", source_.string(), key, v);
        return v;
    }
    double number(const char* key) const {
        const auto& v = at(key);
        check(v.is_number(), "{}: '{}' must be a number, got {}", source_.string(), key, v.dump());
        return v.get<double>();
    }
    double number(const char* key, double fallback) const {
        return has(key) ? number(key) : fallback;
    }
    bool boolean(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        const auto& v = j_.at(key);
        check(v.is_boolean(), "{}: '{}' must be true or false, got {}", source_.string(), key,
              v.dump());
        return v.get<bool>();
    }
    std::string string(const char* key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        const auto& v = j_.at(key);
        check(v.is_string(), "{}: '{}' must be a string, got {}", source_.string(), key, v.dump());
        return v.get<std::string>();
    }

  private:
    const nlohmann::json& at(const char* key) const {
        check(has(key), "{}: missing key '{}'", source_.string(), key);
        return j_.at(key);
    }
    const nlohmann::json& j_;
    std::filesystem::path source_;
};

}  // namespace greenmoe::hf

// Reading config objects from JSON strictly: typed fields, unknown keys rejected by name.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

#include "greenmoe/core/error.h"

namespace greenmoe {

// Reads optional fields of one JSON object; finish() rejects keys nobody asked for, so
// a typo in a preset or --set option is an error instead of a silently ignored value.
class JsonReader {
  public:
    JsonReader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
        check(j_.is_object(), "{}: expected a JSON object, got {}", where_, j_.type_name());
    }

    template <typename T>
    void get(const char* key, T& value) {
        seen_.insert(key);
        auto it = j_.find(key);
        if (it == j_.end() || it->is_null()) return;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            if (it->is_number()) {
                value = whole_number<T>(key, *it);
                return;
            }
        }
        try {
            value = it->template get<T>();
        } catch (const nlohmann::json::exception&) {
            fail("{}.{}: expected {}, got {}", where_, key, kind_of<T>(), it->dump());
        }
    }

    // Marks a key as handled by the caller (e.g. a nested object read separately).
    void mark(const char* key) { seen_.insert(key); }
    const nlohmann::json& json() const { return j_; }

    void finish() const {
        for (auto it = j_.begin(); it != j_.end(); ++it) {
            if (!seen_.count(it.key())) {
                std::string known;
                for (const auto& k : seen_) known += (known.empty() ? "" : ", ") + k;
                fail("{}.{}: unknown key (known: {})", where_, it.key(), known);
            }
        }
    }

  private:
    // What a field of type T holds, in the words of a config file.
    template <typename T>
    static const char* kind_of() {
        if constexpr (std::is_same_v<T, bool>) {
            return "true or false";
        } else if constexpr (std::is_integral_v<T>) {
            return "a whole number";
        } else if constexpr (std::is_floating_point_v<T>) {
            return "a number";
        } else if constexpr (std::is_same_v<T, std::string>) {
            return "a string";
        } else if constexpr (requires { typename T::value_type; }) {
            return "a list";
        } else {
            return "an object";
        }
    }

    // A count is a whole number in T's range: 2.5 is refused (nlohmann would truncate it),
    // 1e9 is read as 1000000000, and 1e30 or -1 for an unsigned field are refused.
    template <typename T>
    T whole_number(const char* key, const nlohmann::json& v) const {
        constexpr double kLimit = static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
        if (v.is_number_float()) {
            const double d = v.get<double>();
            check(std::isfinite(d) && std::floor(d) == d, "{}.{}: must be a whole number, got {}",
                  where_, key, v.dump());
            check(d >= static_cast<double>(std::numeric_limits<T>::min()) && d < kLimit,
                  "{}.{}: must be a whole number in [{}, {}], got {}", where_, key,
                  std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), v.dump());
            return static_cast<T>(d);
        }
        const bool fits = v.is_number_unsigned() ? std::in_range<T>(v.get<uint64_t>())
                                                 : std::in_range<T>(v.get<int64_t>());
        check(fits, "{}.{}: must be a whole number in [{}, {}], got {}", where_, key,
              std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), v.dump());
        return v.get<T>();
    }

    const nlohmann::json& j_;
    std::string where_;
    std::set<std::string> seen_;
};

}  // namespace greenmoe

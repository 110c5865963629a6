// Reading config objects from JSON strictly: typed fields, unknown keys rejected by name.
#pragma once

#include <nlohmann/json.hpp>

#include <set>
#include <string>

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
        try {
            value = it->template get<T>();
        } catch (const nlohmann::json::exception& e) {
            fail("{}.{}: {} (value {})", where_, key, e.what(), it->dump());
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
                fail("{}: unknown key '{}' (known: {})", where_, it.key(), known);
            }
        }
    }

  private:
    const nlohmann::json& j_;
    std::string where_;
    std::set<std::string> seen_;
};

}  // namespace greenmoe

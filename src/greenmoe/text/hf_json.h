// Reading tokenizer.json with errors that name the file, the JSON path and what was expected.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "greenmoe/core/error.h"

namespace greenmoe::hf {

// A JSON value and where it is: "tokenizer.json: /pre_tokenizer/pretokenizers/1".
class JsonNode {
  public:
    JsonNode(const nlohmann::json& value, std::string file, std::string path)
        : value_(&value), file_(std::move(file)), path_(std::move(path)) {}

    const nlohmann::json& value() const { return *value_; }
    std::string where() const {
        // Built by appending: GCC 12 warns (-Wrestrict) on "literal" + std::string temporaries.
        std::string text = file_;
        text += ": ";
        text += path_.empty() ? "/" : path_;
        return text;
    }
    bool is_null() const { return value_->is_null(); }
    bool has(const char* key) const {
        return value_->is_object() && value_->contains(key) && !(*value_)[key].is_null();
    }

    JsonNode operator[](const char* key) const {  // a required member
        check(value_->is_object(), "{}: expected a JSON object", where());
        check(value_->contains(key), "{}: missing key \"{}\"", where(), key);
        return child(value_->at(key), std::string("/") + key);
    }
    JsonNode operator[](size_t index) const {  // a required element
        if (!value_->is_array() || index >= value_->size()) {
            fail("{}: expected an array of at least {} elements", where(), index + 1);
        }
        std::string suffix = "/";
        suffix += std::to_string(index);
        return child(value_->at(index), suffix);
    }
    size_t size() const { return value_->size(); }

    std::string string() const {
        check(value_->is_string(), "{}: expected a string", where());
        return value_->get<std::string>();
    }
    bool boolean() const {
        check(value_->is_boolean(), "{}: expected true or false", where());
        return value_->get<bool>();
    }
    long long integer() const {
        check(value_->is_number_integer(), "{}: expected an integer", where());
        return value_->get<long long>();
    }
    void expect_array() const { check(value_->is_array(), "{}: expected an array", where()); }
    void expect_object() const { check(value_->is_object(), "{}: expected an object", where()); }

    // Optional members with a default when absent or null.
    std::string string_or(const char* key, const std::string& fallback) const {
        return has(key) ? (*this)[key].string() : fallback;
    }
    bool boolean_or(const char* key, bool fallback) const {
        return has(key) ? (*this)[key].boolean() : fallback;
    }
    long long integer_or(const char* key, long long fallback) const {
        return has(key) ? (*this)[key].integer() : fallback;
    }
    // The "type" of a component.
    std::string type() const { return (*this)["type"].string(); }

    JsonNode child(const nlohmann::json& value, const std::string& suffix) const {
        return JsonNode(value, file_, path_ + suffix);
    }
    // The member `key` of this object, reached through items().
    JsonNode member(const nlohmann::json& value, const std::string& key) const {
        std::string suffix = "/";
        suffix += key;
        return child(value, suffix);
    }

  private:
    const nlohmann::json* value_;
    std::string file_, path_;
};

// For a component type the reader does not implement: one error, never a silently different
// tokenization.
[[noreturn]] inline void unsupported(const JsonNode& node, const char* what,
                                     const std::string& type, const char* supported) {
    fail("{}: unsupported {} type \"{}\" (greenmoe supports {})", node.where(), what, type,
         supported);
}

}  // namespace greenmoe::hf

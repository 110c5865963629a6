// Oniguruma behind hf::Regex.
#include "greenmoe/text/hf_regex.h"

#include <oniguruma.h>

#include <mutex>

#include "greenmoe/core/error.h"
#include "greenmoe/text/pretokenize.h"

namespace greenmoe::hf {

struct Regex::Impl {
    regex_t* regex = nullptr;
};

namespace {

void initialize_oniguruma() {
    static std::once_flag once;
    std::call_once(once, [] {
        OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
        onig_initialize(encodings, 1);
    });
}

std::string onig_message(int code, OnigErrorInfo* info) {
    OnigUChar buffer[ONIG_MAX_ERROR_MESSAGE_LEN];
    const int n =
        info ? onig_error_code_to_str(buffer, code, info) : onig_error_code_to_str(buffer, code);
    return std::string(reinterpret_cast<const char*>(buffer), n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace

Regex::Regex(std::string_view pattern, const std::string& where)
    : impl_(std::make_unique<Impl>()), pattern_(pattern) {
    initialize_oniguruma();
    OnigErrorInfo info{};
    const auto* begin = reinterpret_cast<const OnigUChar*>(pattern_.data());
    const int rc = onig_new(&impl_->regex, begin, begin + pattern_.size(), ONIG_OPTION_NONE,
                            ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT, &info);
    if (rc != ONIG_NORMAL) {
        impl_->regex = nullptr;
        fail("{}: the regular expression {:?} is not one Oniguruma accepts: {}", where, pattern_,
             onig_message(rc, &info));
    }
}

Regex::~Regex() {
    if (impl_ && impl_->regex) onig_free(impl_->regex);
}

std::vector<Regex::Match> Regex::find_all(std::string_view text) const {
    std::vector<Match> matches;
    OnigRegion* region = onig_region_new();
    const auto* begin = reinterpret_cast<const OnigUChar*>(text.data());
    const auto* end = begin + text.size();
    size_t from = 0;
    bool have_last = false;
    size_t last_end = 0;
    while (from <= text.size()) {
        const int rc =
            onig_search(impl_->regex, begin, end, begin + from, end, region, ONIG_OPTION_NONE);
        if (rc == ONIG_MISMATCH) break;
        if (rc < 0) {
            onig_region_free(region, 1);
            fail("regular expression {:?} failed on a text of {} bytes: {}", pattern_, text.size(),
                 onig_message(rc, nullptr));
        }
        const auto b = static_cast<size_t>(region->beg[0]);
        const auto e = static_cast<size_t>(region->end[0]);
        if (b == e && have_last && last_end == e) {
            // An empty match where the last one ended: step over one character and retry.
            if (from >= text.size()) break;
            from += decode_utf8(text, from).length;
            continue;
        }
        matches.push_back({b, e});
        from = e;
        have_last = true;
        last_end = e;
    }
    onig_region_free(region, 1);
    return matches;
}

}  // namespace greenmoe::hf

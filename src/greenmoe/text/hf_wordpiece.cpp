// WordPiece as `tokenizers` runs it (models/wordpiece/mod.rs).
#include "greenmoe/text/hf_wordpiece.h"

#include "greenmoe/text/hf_unicode.h"

namespace greenmoe::hf {

WordPieceModel WordPieceModel::parse(const JsonNode& node) {
    WordPieceModel model;
    model.vocab_ = Vocabulary::from_object(node["vocab"]);
    const std::string unk = node.string_or("unk_token", "[UNK]");
    const auto unk_id = model.vocab_.find(unk);
    check(unk_id.has_value(), "{}/unk_token: {:?} is not in the vocabulary", node.where(), unk);
    model.unk_id_ = *unk_id;
    model.prefix_ = node.string_or("continuing_subword_prefix", "##");
    const long long max_chars = node.integer_or("max_input_chars_per_word", 100);
    check(max_chars >= 0, "{}/max_input_chars_per_word: expected a count ≥ 0", node.where());
    model.max_chars_ = static_cast<size_t>(max_chars);
    return model;
}

void WordPieceModel::tokenize_word(const std::string& word, std::vector<int>& out) const {
    size_t chars = 0;
    for_each_char(word, [&](uint32_t, size_t, size_t) { ++chars; });
    if (chars > max_chars_) {
        out.push_back(unk_id_);
        return;
    }
    const size_t first = out.size();
    std::string candidate;
    for (size_t start = 0; start < word.size();) {
        // The longest piece from `start` in the vocabulary, shortened a character at a time.
        size_t end = word.size();
        int found = -1;
        while (start < end) {
            candidate.clear();
            if (start > 0) candidate = prefix_;
            candidate.append(word, start, end - start);
            if (const auto id = vocab_.find(candidate)) {
                found = *id;
                break;
            }
            size_t last = end - 1;
            while (last > start && (static_cast<unsigned char>(word[last]) & 0xC0) == 0x80) --last;
            end = last;
        }
        if (found < 0) {  // one piece without a match makes the whole word unknown
            out.resize(first);
            out.push_back(unk_id_);
            return;
        }
        out.push_back(found);
        start = end;
    }
}

}  // namespace greenmoe::hf

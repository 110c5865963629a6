// Unigram as `tokenizers` runs it (models/unigram/model.rs: encode_optimized, tokenize).
#include "greenmoe/text/hf_unigram.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "greenmoe/text/hf_unicode.h"

namespace greenmoe::hf {

namespace {
// What an unknown character costs below the lowest score (K_UNK_PENALTY in `tokenizers`).
constexpr double kUnknownPenalty = 10.0;
}  // namespace

UnigramModel UnigramModel::parse(const JsonNode& node) {
    UnigramModel model;
    const JsonNode vocab = node["vocab"];
    vocab.expect_array();
    model.min_score_ = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < vocab.size(); ++i) {
        const JsonNode entry = vocab[i];
        entry.expect_array();
        check(entry.size() == 2, "{}: expected [piece, score]", entry.where());
        const JsonNode score = entry[size_t{1}];
        check(score.value().is_number(), "{}: expected a number", score.where());
        model.vocab_.add(entry[size_t{0}].string(), static_cast<long long>(i), entry.where());
        model.scores_.push_back(score.value().get<double>());
        model.min_score_ = std::min(model.min_score_, model.scores_.back());
        model.max_piece_bytes_ = std::max(model.max_piece_bytes_, entry[size_t{0}].string().size());
    }
    if (node.has("unk_id")) {
        const long long unk = node["unk_id"].integer();
        check(unk >= 0 && static_cast<size_t>(unk) < vocab.size(),
              "{}/unk_id: {} is not an index of the vocabulary", node.where(), unk);
        model.unk_id_ = static_cast<int>(unk);
    }
    model.byte_fallback_ = node.boolean_or("byte_fallback", false);
    return model;
}

void UnigramModel::tokenize_word(const std::string& word, std::vector<int>& out) const {
    // best[e]: the best segmentation of word[0, e): its score, where its last piece starts, and
    // that piece's id. Ties keep the first found (shorter pieces are tried first).
    struct Node {
        double score = 0;
        size_t start = 0;
        int id = -1;
        bool reached = false;
    };
    const size_t n = word.size();
    std::vector<Node> best(n + 1);
    best[0].reached = true;
    const double unknown_score = min_score_ - kUnknownPenalty;
    for (size_t start = 0; start < n;) {
        const size_t char_length = decode_utf8(word, start).length;
        const double base = best[start].score;
        bool single_char_piece = false;
        const size_t longest = std::min(max_piece_bytes_, n - start);
        for (size_t length = 1; length <= longest; ++length) {
            const auto id = vocab_.find(std::string_view(word).substr(start, length));
            if (!id) continue;
            Node& target = best[start + length];
            const double score = base + scores_[static_cast<size_t>(*id)];
            if (!target.reached || score > target.score) target = {score, start, *id, true};
            if (length == char_length) single_char_piece = true;
        }
        if (!single_char_piece) {
            check(unk_id_ >= 0, "the Unigram model has no unk_id for a character it lacks");
            Node& target = best[start + char_length];
            const double score = base + unknown_score;
            if (!target.reached || score > target.score) target = {score, start, unk_id_, true};
        }
        start += char_length;
    }
    // Back from the end: the pieces, with consecutive unknown ones fused into one string.
    std::vector<std::string> pieces;
    std::string unknown_run;
    for (size_t end = n; end > 0;) {
        const Node& node = best[end];
        if (node.id == unk_id_) {
            unknown_run.insert(0, word, node.start, end - node.start);
        } else {
            if (!unknown_run.empty()) pieces.push_back(std::move(unknown_run));
            unknown_run.clear();
            pieces.push_back(*vocab_.token(node.id));
        }
        end = node.start;
    }
    if (!unknown_run.empty()) pieces.push_back(std::move(unknown_run));
    std::reverse(pieces.begin(), pieces.end());
    for (const std::string& piece : pieces) {
        if (const auto id = vocab_.find(piece)) {
            out.push_back(*id);
            continue;
        }
        if (byte_fallback_) {
            std::vector<int> bytes;
            for (const char c : piece) {
                const auto id =
                    vocab_.find(fmt::format("<0x{:02X}>", static_cast<unsigned char>(c)));
                if (!id) break;
                bytes.push_back(*id);
            }
            if (bytes.size() == piece.size()) {
                out.insert(out.end(), bytes.begin(), bytes.end());
                continue;
            }
        }
        out.push_back(unk_id_);
    }
}

}  // namespace greenmoe::hf

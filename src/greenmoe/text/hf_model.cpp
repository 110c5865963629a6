// The vocabulary shared by the models, and the choice of model by its type.
#include "greenmoe/text/hf_model.h"

#include <algorithm>

#include "greenmoe/text/hf_bpe.h"
#include "greenmoe/text/hf_unigram.h"
#include "greenmoe/text/hf_wordpiece.h"

namespace greenmoe::hf {

namespace {
// Ids up to 2^20 are always accepted (a 32 MiB table at most), more only for larger
// vocabularies.
constexpr long long kMinIdLimit = 1LL << 20;
}  // namespace

void Vocabulary::add(const std::string& token, long long id, const std::string& where) {
    check(id >= 0 && id < (1LL << 31) - 1, "{}: token id {} out of range", where, id);
    const auto index = static_cast<size_t>(id);
    ids_.insert_or_assign(token, static_cast<int>(id));
    if (index >= tokens_.size()) {
        tokens_.resize(index + 1);
        present_.resize(index + 1, false);
    }
    tokens_[index] = token;
    present_[index] = true;
}

Vocabulary Vocabulary::from_object(const JsonNode& vocab) {
    vocab.expect_object();
    Vocabulary result;
    // The table of tokens by id is as long as the largest id: ids far sparser than any real
    // vocabulary's (a corrupt or hostile file) would make it take gigabytes.
    const long long max_id = std::max(kMinIdLimit, 4 * static_cast<long long>(vocab.size()));
    for (const auto& [token, id_json] : vocab.value().items()) {
        const JsonNode id_node = vocab.member(id_json, token);
        const long long id = id_node.integer();
        check(id < max_id,
              "{}: token id {} is far beyond the vocabulary's {} entries (ids must be below {})",
              id_node.where(), id, vocab.size(), max_id);
        result.add(token, id, id_node.where());
    }
    return result;
}

void Model::tokenize(const std::string& word, std::vector<int>& out, BpeCache* cache) const {
    if (word.empty()) return;
    if (!cache || word.size() > BpeCache::kMaxCachedWordBytes) return tokenize_word(word, out);
    if (const std::vector<int>* ids = cache->find(word)) {
        out.insert(out.end(), ids->begin(), ids->end());
        return;
    }
    const size_t start = out.size();
    tokenize_word(word, out);
    cache->insert(word, std::vector<int>(out.begin() + static_cast<long>(start), out.end()));
}

std::unique_ptr<const Model> Model::parse(const JsonNode& node) {
    node.expect_object();
    // Files written before `type` was serialized hold a BPE model.
    const std::string type = node.string_or("type", "BPE");
    if (type == "BPE") return std::make_unique<BpeModel>(BpeModel::parse(node));
    if (type == "WordPiece") return std::make_unique<WordPieceModel>(WordPieceModel::parse(node));
    if (type == "Unigram") return std::make_unique<UnigramModel>(UnigramModel::parse(node));
    unsupported(node, "model", type, "BPE, WordPiece and Unigram");
}

}  // namespace greenmoe::hf

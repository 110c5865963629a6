// tokenizer.json → hf::Tokenizer, and the encode / decode pipelines (tokenizer/mod.rs).
#include "greenmoe/text/hf_tokenizer.h"

#include <omp.h>

#include <fstream>
#include <functional>
#include <sstream>

namespace greenmoe::hf {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    check(in.good(), "{}: cannot open the file", path.string());
    std::stringstream buffer;
    buffer << in.rdbuf();
    try {
        return nlohmann::json::parse(buffer.str());
    } catch (const nlohmann::json::exception& e) {
        // parse_error, or out_of_range for a number past double's range ("1e999").
        fail("{}: not valid JSON: {}", path.string(), e.what());
    }
}

// tokenizer_config.json writes special tokens as a string or as {"content": …}.
std::optional<std::string> config_token(const JsonNode& config, const char* key) {
    if (!config.has(key)) return std::nullopt;
    const JsonNode node = config[key];
    if (node.value().is_string()) return node.string();
    return node["content"].string();
}

// transformers' tokenizer classes that rebuild the post-processor from add_bos_token /
// add_eos_token (update_post_processor), with their defaults.
struct TemplateClass {
    const char* name;
    bool add_bos, add_eos;
};
constexpr TemplateClass kTemplateClasses[] = {
    {"LlamaTokenizer", true, false},
    {"CodeLlamaTokenizer", true, false},
    {"GemmaTokenizer", true, false},
    {"GPTNeoXTokenizer", false, false},
};

}  // namespace

Tokenizer Tokenizer::load(const fs::path& path) {
    fs::path file = path;
    std::error_code ec;
    if (fs::is_directory(path, ec)) file = path / "tokenizer.json";
    check(fs::is_regular_file(file, ec),
          "{}: no tokenizer.json (expected a tokenizer.json file "
          "or a Hugging Face model folder holding one)",
          file.string());
    const fs::path config_path = file.parent_path() / "tokenizer_config.json";
    nlohmann::json config = nullptr;
    if (fs::is_regular_file(config_path, ec)) config = read_json(config_path);
    return from_json(read_json(file), file.string(), config, config_path.string());
}

Tokenizer Tokenizer::from_json(const nlohmann::json& json, const std::string& file,
                               const nlohmann::json& config_json, const std::string& config_file) {
    const JsonNode root(json, file, "");
    root.expect_object();
    Tokenizer t;
    t.source_ = file;
    // Truncation would cut the ids of long texts: refused rather than ignored.
    check(!root.has("truncation"),
          "{}/truncation: truncation is not supported (greenmoe encodes whole texts; set it to "
          "null)",
          root.where());
    // The model first: a tokenizer of another model type is refused for that reason.
    t.model_ = Model::parse(root["model"]);
    t.normalizer_ = root.has("normalizer") ? Normalizer::parse(root["normalizer"]) : Normalizer{};
    t.pre_tokenizer_ =
        root.has("pre_tokenizer") ? PreTokenizer::parse(root["pre_tokenizer"]) : PreTokenizer{};
    t.decoder_ = root.has("decoder") ? Decoder::parse(root["decoder"]) : Decoder{};
    t.vocab_size_ = t.model_->max_id() + 1;

    // Added tokens, split into those matched on the raw text and those matched on normalized
    // text (by their "normalized" flag), each pattern normalized like the text it meets.
    std::vector<AddedToken> raw, normalized;
    std::vector<std::string> raw_patterns, normalized_patterns;
    if (root.has("added_tokens")) {
        const JsonNode list = root["added_tokens"];
        list.expect_array();
        for (size_t i = 0; i < list.size(); ++i) {
            const JsonNode node = list[i];
            AddedToken token;
            const long long id = node["id"].integer();
            check(id >= 0 && id < (1LL << 31) - 1, "{}/id: out of range", node.where());
            token.id = static_cast<int>(id);
            token.content = node["content"].string();
            token.single_word = node.boolean_or("single_word", false);
            token.lstrip = node.boolean_or("lstrip", false);
            token.rstrip = node.boolean_or("rstrip", false);
            token.normalized = node.boolean_or("normalized", true);
            token.special = node.boolean_or("special", false);
            t.vocab_size_ = std::max(t.vocab_size_, token.id + 1);
            t.added_index_.emplace(token.id, t.added_.size());
            if (token.special) t.special_contents_.insert(token.content);
            // `tokenizers` (0.22 on) decodes a normalized token as its normalized form.
            const std::string normalized_form =
                token.normalized ? t.normalizer_.apply(token.content) : token.content;
            t.added_.push_back(token);
            t.added_decode_forms_.push_back(normalized_form);
            if (token.normalized) {
                normalized_patterns.push_back(normalized_form);
                normalized.push_back(std::move(token));
            } else {
                raw_patterns.push_back(token.content);
                raw.push_back(std::move(token));
            }
        }
    }
    t.raw_matcher_ = AddedTokenMatcher(std::move(raw), std::move(raw_patterns));
    t.normalized_matcher_ =
        AddedTokenMatcher(std::move(normalized), std::move(normalized_patterns));

    // The post-processor, reduced to ids before and after a single sequence.
    const auto id_of = [&](const std::string& token, const std::string& where) {
        const auto id = t.token_to_id(token);
        check(id.has_value(), "{}: token {:?} is not in the vocabulary", where, token);
        return *id;
    };
    // An id the post-processor adds must be one the tokenizer has, or encode() would return ids
    // past the model's embedding table.
    const auto post_processor_id = [&](const JsonNode& node) {
        const long long id = node.integer();
        check(id >= 0 && id < t.vocab_size_,
              "{}: token id {} is not in the vocabulary (ids 0 to {})", node.where(), id,
              t.vocab_size_ - 1);
        return static_cast<int>(id);
    };
    std::function<void(const JsonNode&)> add_processor = [&](const JsonNode& node) {
        const std::string type = node.type();
        if (type == "Sequence") {
            const JsonNode list = node["processors"];
            list.expect_array();
            for (size_t i = 0; i < list.size(); ++i) add_processor(list[i]);
        } else if (type == "ByteLevel") {
            // Only moves offsets; the ids stay as they are.
        } else if (type == "TemplateProcessing") {
            const JsonNode single = node["single"];
            single.expect_array();
            const JsonNode specials = node["special_tokens"];
            std::vector<int> before, after;
            bool seen_sequence = false;
            for (size_t i = 0; i < single.size(); ++i) {
                const JsonNode item = single[i];
                if (item.has("Sequence")) {
                    check(!seen_sequence, "{}: the template names the sequence twice",
                          item.where());
                    seen_sequence = true;
                    continue;
                }
                const std::string name = item["SpecialToken"]["id"].string();
                check(specials.has(name.c_str()), "{}: special token {:?} is not in special_tokens",
                      item.where(), name);
                const JsonNode ids = specials[name.c_str()]["ids"];
                ids.expect_array();
                for (size_t k = 0; k < ids.size(); ++k) {
                    (seen_sequence ? after : before).push_back(post_processor_id(ids[k]));
                }
            }
            check(seen_sequence, "{}/single: the template has no sequence $A", node.where());
            t.prefix_ids_.insert(t.prefix_ids_.begin(), before.begin(), before.end());
            t.suffix_ids_.insert(t.suffix_ids_.end(), after.begin(), after.end());
        } else if (type == "RobertaProcessing" || type == "BertProcessing") {
            const JsonNode cls = node["cls"], sep = node["sep"];
            t.prefix_ids_.insert(t.prefix_ids_.begin(), post_processor_id(cls[size_t{1}]));
            t.suffix_ids_.push_back(post_processor_id(sep[size_t{1}]));
        } else {
            unsupported(node, "post-processor", type,
                        "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing and "
                        "Sequence");
        }
    };
    if (root.has("post_processor")) add_processor(root["post_processor"]);

    if (!config_json.is_null()) {
        const JsonNode config(config_json, config_file, "");
        config.expect_object();
        if (const auto bos = config_token(config, "bos_token"))
            t.bos_id_ = id_of(*bos, config.where() + "bos_token");
        if (const auto eos = config_token(config, "eos_token"))
            t.eos_id_ = id_of(*eos, config.where() + "eos_token");
        std::string cls = config.string_or("tokenizer_class", "");
        if (cls.ends_with("Fast")) cls.resize(cls.size() - 4);
        for (const TemplateClass& c : kTemplateClasses) {
            if (cls != c.name) continue;
            const bool add_bos = config.boolean_or("add_bos_token", c.add_bos);
            const bool add_eos = config.boolean_or("add_eos_token", c.add_eos);
            check(!add_bos || t.bos_id_, "{}: add_bos_token is true but there is no bos_token",
                  config.where());
            check(!add_eos || t.eos_id_, "{}: add_eos_token is true but there is no eos_token",
                  config.where());
            t.prefix_ids_.clear();
            t.suffix_ids_.clear();
            if (add_bos) t.prefix_ids_.push_back(*t.bos_id_);
            if (add_eos) t.suffix_ids_.push_back(*t.eos_id_);
        }
    }
    return t;
}

std::optional<int> Tokenizer::token_to_id(std::string_view token) const {
    for (const AddedToken& a : added_) {
        if (a.content == token) return a.id;
    }
    return model_->token_to_id(token);
}

std::string Tokenizer::id_to_token(int id) const {
    if (const auto it = added_index_.find(id); it != added_index_.end()) {
        return added_decode_forms_[it->second];
    }
    const std::string* token = model_->id_to_token(id);
    check(token != nullptr, "{}: no token has id {} (the vocabulary has {} ids)", source_, id,
          vocab_size_);
    return *token;
}

void Tokenizer::split_added(std::vector<Piece>& pieces, const AddedTokenMatcher& matcher) const {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    for (Piece& piece : pieces) {
        if (piece.token >= 0 || matcher.empty()) {
            out.push_back(std::move(piece));
            continue;
        }
        for (const auto& s : matcher.split(piece.text)) {
            out.push_back({piece.text.substr(s.begin, s.end - s.begin),
                           piece.at_start && s.begin == 0, s.token});
        }
    }
    pieces.swap(out);
}

bool Tokenizer::is_special_id(int id) const {
    const auto it = added_index_.find(id);
    return it != added_index_.end() && added_[it->second].special;
}

void Tokenizer::post_process(std::vector<int>& ids) const {
    if (prefix_ids_.empty() && suffix_ids_.empty()) return;
    ids.insert(ids.begin(), prefix_ids_.begin(), prefix_ids_.end());
    ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
}

std::vector<int> Tokenizer::encode(std::string_view input, bool add_special_tokens,
                                   BpeCache* cache) const {
    return encode_impl(input, add_special_tokens, cache, nullptr);
}

Tokenizer::Encoding Tokenizer::encode_with_tokens(std::string_view input,
                                                  bool add_special_tokens) const {
    Encoding encoding;
    encoding.ids = encode_impl(input, add_special_tokens, nullptr, &encoding.tokens);
    return encoding;
}

std::vector<int> Tokenizer::encode_impl(std::string_view input, bool add_special_tokens,
                                        BpeCache* cache, std::vector<std::string>* tokens) const {
    std::vector<int> ids;
    std::vector<Piece> pieces;
    if (!input.empty())
        pieces.push_back(
            {is_valid_utf8(input) ? std::string(input) : to_valid_utf8(input), true, -1});
    // Tokens that match raw text first; then each remaining piece is normalized and searched
    // for the tokens that match normalized text.
    split_added(pieces, raw_matcher_);
    if (!normalizer_.empty()) {
        for (Piece& piece : pieces) {
            if (piece.token < 0) piece.text = normalizer_.apply(piece.text);
        }
    }
    split_added(pieces, normalized_matcher_);
    std::erase_if(pieces, [](const Piece& p) { return p.token < 0 && p.text.empty(); });
    pre_tokenizer_.apply(pieces);
    BpeCache local;
    for (const Piece& piece : pieces) {
        const size_t first = ids.size();
        if (piece.token >= 0) {
            ids.push_back(piece.token);
        } else {
            model_->tokenize(piece.text, ids, cache ? cache : &local);
        }
        if (!tokens) continue;
        if (piece.token >= 0) {
            tokens->push_back(piece.text);  // what matched, with any stripped whitespace
        } else {
            for (size_t i = first; i < ids.size(); ++i) tokens->push_back(id_to_token(ids[i]));
        }
    }
    if (add_special_tokens) {
        post_process(ids);
        if (tokens) {
            std::vector<std::string> around;
            for (const int id : prefix_ids_) around.push_back(id_to_token(id));
            tokens->insert(tokens->begin(), around.begin(), around.end());
            for (const int id : suffix_ids_) tokens->push_back(id_to_token(id));
        }
    }
    return ids;
}

std::vector<std::vector<int>> Tokenizer::encode_batch(const std::vector<std::string_view>& texts,
                                                      bool add_special_tokens) const {
    std::vector<std::vector<int>> out(texts.size());
    std::exception_ptr error;
#pragma omp parallel
    {
        BpeCache cache;
#pragma omp for schedule(dynamic, 16)
        for (size_t i = 0; i < texts.size(); ++i) {
            try {
                out[i] = encode(texts[i], add_special_tokens, &cache);
            } catch (...) {
#pragma omp critical
                if (!error) error = std::current_exception();
            }
        }
    }
    if (error) std::rethrow_exception(error);
    return out;
}

std::string Tokenizer::decode(const std::vector<int>& ids, bool skip_special_tokens) const {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (const int id : ids) {
        std::string token = id_to_token(id);
        if (skip_special_tokens && (special_contents_.contains(token) || is_special_id(id))) {
            continue;
        }
        tokens.push_back(std::move(token));
    }
    return decoder_.decode(std::move(tokens));
}

}  // namespace greenmoe::hf

// The `prepare` pipeline: documents → tokens → llm.c shards (see prepare.h).
#include "greenmoe/text/prepare.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/token_shard.h"
#include "greenmoe/text/corpus_reader.h"

namespace greenmoe {

namespace {

namespace fs = std::filesystem;

// A batch is tokenised in parallel; its size bounds memory (text plus tokens).
constexpr size_t kBatchBytes = size_t{32} << 20;
constexpr size_t kBatchDocuments = size_t{1} << 14;
// Documents this large are split and encoded on all threads by themselves.
constexpr size_t kLargeDocument = size_t{4} << 20;

std::string shard_name(const std::string& name, const char* split, size_t index) {
    return fmt::format("{}_{}_{:06}.bin", name, split, index);
}

// True for "<name>_train_NNNNNN.bin" / "<name>_val_NNNNNN.bin".
bool is_shard_of(const std::string& file, const std::string& name) {
    for (const std::string split : {"_train_", "_val_"}) {
        const std::string prefix = name + split;
        if (file.size() == prefix.size() + 10 && file.starts_with(prefix) &&
            file.ends_with(".bin") &&
            std::all_of(file.begin() + static_cast<ptrdiff_t>(prefix.size()), file.end() - 4,
                        [](char c) { return c >= '0' && c <= '9'; })) {
            return true;
        }
    }
    return false;
}

// Cuts the token stream into the validation shard and the train shards. Token is uint16_t or,
// for vocabularies beyond 65,536 ids, uint32_t.
template <typename Token>
class ShardWriter {
  public:
    ShardWriter(const PrepareOptions& options, int vocab_size)
        : options_(options), max_token_(static_cast<int64_t>(vocab_size) - 1) {
        val_.reserve(options.val_tokens);
    }

    void add(const std::vector<int>& tokens) {
        for (const int t : tokens) {
            check(t >= 0 && t <= max_token_, "token id {} is outside the vocabulary of {} ids", t,
                  max_token_ + 1);
            const auto token = static_cast<Token>(t);
            if (val_.size() < options_.val_tokens) {
                val_.push_back(token);
                continue;
            }
            if (!val_written_) write_val();
            train_.push_back(token);
            ++train_count_;
            if (train_.size() == options_.shard_tokens) write_train();
        }
    }

    // Writes what is left; the corpus must have had tokens beyond the validation split.
    void finish() {
        check(train_count_ > 0,
              "the corpus is too small for the requested validation split: it has {} tokens "
              "in all, the validation split takes the first {}, and none are left to train on",
              val_.size(), options_.val_tokens);
        if (!train_.empty()) write_train();
    }

    size_t val_count() const { return val_.size(); }
    size_t train_count() const { return train_count_; }
    const std::vector<fs::path>& val_shards() const { return val_shards_; }
    const std::vector<fs::path>& train_shards() const { return train_shards_; }
    const std::vector<size_t>& train_sizes() const { return train_sizes_; }

  private:
    void write_val() {
        val_written_ = true;
        if (val_.empty()) return;
        const auto path = options_.out_dir / shard_name(options_.name, "val", 0);
        write_token_shard(path, val_.data(), val_.size());
        val_shards_.push_back(path);
    }
    void write_train() {
        const auto path =
            options_.out_dir / shard_name(options_.name, "train", train_shards_.size());
        write_token_shard(path, train_.data(), train_.size());
        train_shards_.push_back(path);
        train_sizes_.push_back(train_.size());
        train_.clear();
    }

    const PrepareOptions& options_;
    int64_t max_token_;
    std::vector<Token> val_, train_;
    bool val_written_ = false;
    size_t train_count_ = 0;
    std::vector<fs::path> val_shards_, train_shards_;
    std::vector<size_t> train_sizes_;
};

// Progress is shown in kB, rounded up so that a non-empty input never shows a total of 0.
uint64_t kilobytes(uint64_t bytes) {
    return (bytes + 999) / 1000;
}

class Gpt2DocumentEncoder final : public DocumentEncoder {
  public:
    explicit Gpt2DocumentEncoder(const Gpt2Tokenizer& tokenizer)
        : tokenizer_(tokenizer), caches_(static_cast<size_t>(std::max(1, omp_get_max_threads()))) {}

    // [eot] + tokens of each document, in order, using every thread.
    void encode_documents(const std::vector<std::string>& documents,
                          std::vector<std::vector<int>>& tokens) override {
        const size_t n = documents.size();
        tokens.resize(n);
        std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 8)
        for (size_t i = 0; i < n; ++i) {
            if (documents[i].size() > kLargeDocument) continue;
            try {
                auto& cache = caches_[static_cast<size_t>(omp_get_thread_num()) % caches_.size()];
                tokens[i].clear();
                tokens[i].push_back(tokenizer_.eot_token());
                tokenizer_.encode_ordinary_into(documents[i], tokens[i], cache);
            } catch (...) {
#pragma omp critical
                error = std::current_exception();
            }
        }
        if (error) std::rethrow_exception(error);
        for (size_t i = 0; i < n; ++i) {
            if (documents[i].size() <= kLargeDocument) continue;
            tokens[i].assign(1, tokenizer_.eot_token());
            const auto body = tokenizer_.encode_ordinary_parallel(documents[i]);
            tokens[i].insert(tokens[i].end(), body.begin(), body.end());
        }
    }
    int vocab_size() const override {
        return tokenizer_.vocab_size();
    }
    nlohmann::ordered_json description() const override {
        return {{"name", "gpt2"},
                {"dir", tokenizer_.dir().string()},
                {"vocab_size", tokenizer_.vocab_size()},
                {"eot_token", tokenizer_.eot_token()},
                {"document_delimiter", "eot_token before every document"}};
    }

  private:
    const Gpt2Tokenizer& tokenizer_;
    std::vector<Gpt2Tokenizer::WordCache> caches_;
};

class HfDocumentEncoder final : public DocumentEncoder {
  public:
    HfDocumentEncoder(const hf::Tokenizer& tokenizer, const std::string& delimiter)
        : tokenizer_(tokenizer), caches_(static_cast<size_t>(std::max(1, omp_get_max_threads()))) {
        if (!delimiter.empty()) {
            const auto id = tokenizer.token_to_id(delimiter);
            check(id.has_value(), "{}: the document delimiter {:?} is not a token of it",
                  tokenizer.source(), delimiter);
            delimiter_ = *id;
        } else if (tokenizer.bos_id()) {
            delimiter_ = *tokenizer.bos_id();
        } else if (tokenizer.eos_id()) {
            delimiter_ = *tokenizer.eos_id();
        } else if (const auto eot = tokenizer.token_to_id("<|endoftext|>")) {
            delimiter_ = *eot;
        } else {
            fail(
                "{}: no bos_token, eos_token or <|endoftext|> to put between documents: name "
                "one with --delimiter TOKEN",
                tokenizer.source());
        }
        delimiter_text_ = tokenizer.id_to_token(delimiter_);
    }

    void encode_documents(const std::vector<std::string>& documents,
                          std::vector<std::vector<int>>& tokens) override {
        const size_t n = documents.size();
        tokens.resize(n);
        std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 8)
        for (size_t i = 0; i < n; ++i) {
            try {
                auto& cache = caches_[static_cast<size_t>(omp_get_thread_num()) % caches_.size()];
                tokens[i] = tokenizer_.encode(documents[i], /*add_special_tokens=*/false, &cache);
                tokens[i].insert(tokens[i].begin(), delimiter_);
            } catch (...) {
#pragma omp critical
                error = std::current_exception();
            }
        }
        if (error) std::rethrow_exception(error);
    }
    int vocab_size() const override {
        return tokenizer_.vocab_size();
    }
    nlohmann::ordered_json description() const override {
        return {{"name", "huggingface"},
                {"file", tokenizer_.source()},
                {"vocab_size", tokenizer_.vocab_size()},
                {"delimiter_token", delimiter_},
                {"document_delimiter", delimiter_text_ + " before every document"}};
    }

  private:
    const hf::Tokenizer& tokenizer_;
    std::vector<hf::BpeCache> caches_;
    int delimiter_ = -1;
    std::string delimiter_text_;
};

template <typename Token>
PrepareResult prepare_with(const PrepareOptions& options, DocumentEncoder& encoder);

}  // namespace

std::unique_ptr<DocumentEncoder> make_document_encoder(const Gpt2Tokenizer& tokenizer) {
    return std::make_unique<Gpt2DocumentEncoder>(tokenizer);
}

std::unique_ptr<DocumentEncoder> make_document_encoder(const hf::Tokenizer& tokenizer,
                                                       const std::string& delimiter) {
    return std::make_unique<HfDocumentEncoder>(tokenizer, delimiter);
}

PrepareResult prepare_shards(const PrepareOptions& options, const Gpt2Tokenizer& tokenizer) {
    Gpt2DocumentEncoder encoder(tokenizer);
    return prepare_shards(options, encoder);
}

PrepareResult prepare_shards(const PrepareOptions& options, DocumentEncoder& encoder) {
    if (encoder.vocab_size() > 65536) return prepare_with<uint32_t>(options, encoder);
    return prepare_with<uint16_t>(options, encoder);
}

namespace {

template <typename Token>
PrepareResult prepare_with(const PrepareOptions& options, DocumentEncoder& encoder) {
    check(!options.inputs.empty(), "prepare: no input files given");
    check(!options.out_dir.empty(), "prepare: no output folder given");
    check(!options.name.empty() && options.name.find('/') == std::string::npos,
          "prepare: the data set name {:?} must be non-empty and contain no '/'", options.name);
    check(options.shard_tokens > 0, "prepare: --shard-tokens must be positive");

    uint64_t total_bytes = 0;
    for (const auto& input : options.inputs) {
        std::error_code ec;
        const auto size = fs::file_size(input, ec);
        check(!ec, "{}: cannot read input ({})", input.string(), ec.message());
        total_bytes += size;
    }
    std::error_code ec;
    fs::create_directories(options.out_dir, ec);
    check(!ec, "{}: cannot create the output folder ({})", options.out_dir.string(), ec.message());

    ShardWriter<Token> writer(options, encoder.vocab_size());
    PrepareResult result;
    nlohmann::ordered_json inputs_json = nlohmann::ordered_json::array();
    std::vector<std::string> batch;
    std::vector<std::vector<int>> tokens;
    uint64_t bytes_before = 0;
    {
        std::unique_ptr<ProgressBar> progress;
        if (options.show_progress) {
            progress = std::make_unique<ProgressBar>("prepare", kilobytes(total_bytes), "kB");
        }
        for (const auto& input : options.inputs) {
            DocumentReader reader(input);
            size_t documents = 0;
            bool more = true;
            while (more) {
                batch.clear();
                size_t batch_bytes = 0;
                std::string document;
                while (batch.size() < kBatchDocuments && batch_bytes < kBatchBytes) {
                    if (!reader.next(document)) {
                        more = false;
                        break;
                    }
                    batch_bytes += document.size();
                    batch.push_back(std::move(document));
                }
                encoder.encode_documents(batch, tokens);
                for (size_t i = 0; i < batch.size(); ++i) writer.add(tokens[i]);
                documents += batch.size();
                if (progress) {
                    progress->update(kilobytes(bytes_before + reader.bytes_read()),
                                     fmt::format("{} docs, {} tokens", result.documents + documents,
                                                 writer.val_count() + writer.train_count()));
                }
            }
            bytes_before += reader.file_size();
            result.documents += documents;
            inputs_json.push_back({{"path", fs::absolute(input).string()},
                                   {"bytes", reader.file_size()},
                                   {"documents", documents}});
        }
        writer.finish();
        if (progress) {
            progress->update(kilobytes(total_bytes));
            progress->finish(fmt::format("{} docs, {} tokens", result.documents,
                                         writer.val_count() + writer.train_count()));
        }
    }

    result.val_tokens = writer.val_count();
    result.train_tokens = writer.train_count();
    result.val_shards = writer.val_shards();
    result.train_shards = writer.train_shards();

    // Shards left by an earlier, larger run would silently join this data set.
    std::set<std::string> written;
    for (const auto& p : result.val_shards) written.insert(p.filename().string());
    for (const auto& p : result.train_shards) written.insert(p.filename().string());
    for (const auto& entry : fs::directory_iterator(options.out_dir)) {
        const std::string file = entry.path().filename().string();
        if (is_shard_of(file, options.name) && !written.contains(file)) {
            fs::remove(entry.path(), ec);
            check(!ec, "{}: cannot remove a stale shard ({})", entry.path().string(), ec.message());
        }
    }

    nlohmann::ordered_json shards_json = nlohmann::ordered_json::array();
    nlohmann::ordered_json val_json = nlohmann::ordered_json::array();
    for (const auto& p : result.val_shards) {
        val_json.push_back({{"file", p.filename().string()}, {"tokens", result.val_tokens}});
    }
    for (size_t i = 0; i < result.train_shards.size(); ++i) {
        shards_json.push_back({{"file", result.train_shards[i].filename().string()},
                               {"tokens", writer.train_sizes()[i]}});
    }
    nlohmann::ordered_json doc = {
        {"name", options.name},
        {"format", sizeof(Token) == 2
                       ? "llm.c .bin token shards: 256 int32 header (magic 20240520, version 1, "
                         "token count), then uint16 tokens"
                       : "llm.c .bin token shards: 256 int32 header (magic 20240801, version 7, "
                         "token count), then uint32 tokens"},
        {"tokenizer", encoder.description()},
        {"inputs", inputs_json},
        {"documents", result.documents},
        {"train_tokens", result.train_tokens},
        {"val_tokens", result.val_tokens},
        {"shard_tokens", options.shard_tokens},
        {"val_shards", val_json},
        {"train_shards", shards_json},
    };
    write_file_atomic(options.out_dir / "prepare.json", doc.dump(2) + "\n");
    return result;
}

}  // namespace

}  // namespace greenmoe

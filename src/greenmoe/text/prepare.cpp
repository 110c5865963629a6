// The `prepare` pipeline: documents → tokens → llm.c shards (see prepare.h).
#include "greenmoe/text/prepare.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
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

// Where the token stream stands: input file, document within it, and that document's tokens
// already written.
struct StreamPosition {
    size_t input = 0, document = 0, skip_tokens = 0;
};

// Cuts the token stream into the validation shard and the train shards. Token is uint16_t or,
// for vocabularies beyond 65,536 ids, uint32_t.
template <typename Token>
class ShardWriter {
  public:
    using OnTrainShard = std::function<void(const StreamPosition&)>;

    ShardWriter(const PrepareOptions& options, int vocab_size, OnTrainShard on_train_shard)
        : options_(options),
          max_token_(static_cast<int64_t>(vocab_size) - 1),
          on_train_shard_(std::move(on_train_shard)) {
        val_.reserve(options.val_tokens);
    }

    // Continues after an interrupted run that wrote the validation shard and these train shards.
    void restore(size_t val_count, const std::vector<size_t>& train_sizes) {
        val_written_ = true;
        val_count_ = val_count;
        if (val_count > 0) {
            val_shards_.push_back(options_.out_dir / shard_name(options_.name, "val", 0));
        }
        for (const size_t n : train_sizes) {
            train_shards_.push_back(options_.out_dir /
                                    shard_name(options_.name, "train", train_shards_.size()));
            train_sizes_.push_back(n);
            train_count_ += n;
        }
    }

    // The tokens of the document at `at`, less the first `skip` (written by an earlier run).
    void add(const std::vector<int>& tokens, StreamPosition at, size_t skip = 0) {
        for (size_t j = skip; j < tokens.size(); ++j) {
            const int t = tokens[j];
            check(t >= 0 && t <= max_token_, "token id {} is outside the vocabulary of {} ids", t,
                  max_token_ + 1);
            const auto token = static_cast<Token>(t);
            if (val_.size() < options_.val_tokens && !val_written_) {
                val_.push_back(token);
                continue;
            }
            if (!val_written_) write_val();
            train_.push_back(token);
            ++train_count_;
            if (train_.size() == options_.shard_tokens) {
                write_train();
                // The position just after this token: a later run starts there.
                StreamPosition next = at;
                next.skip_tokens = j + 1;
                if (next.skip_tokens == tokens.size()) next = {at.input, at.document + 1, 0};
                on_train_shard_(next);
            }
        }
    }

    // Writes what is left; the corpus must have had tokens beyond the validation split.
    void finish() {
        check(train_count_ > 0,
              "the corpus is too small for the requested validation split: it has {} tokens "
              "in all, the validation split takes the first {}, and none are left to train on",
              val_count(), options_.val_tokens);
        if (!train_.empty()) write_train();
    }

    size_t val_count() const { return val_written_ ? val_count_ : val_.size(); }
    size_t train_count() const { return train_count_; }
    const std::vector<fs::path>& val_shards() const { return val_shards_; }
    const std::vector<fs::path>& train_shards() const { return train_shards_; }
    const std::vector<size_t>& train_sizes() const { return train_sizes_; }

  private:
    void write_val() {
        val_written_ = true;
        val_count_ = val_.size();
        if (val_.empty()) return;
        const auto path = options_.out_dir / shard_name(options_.name, "val", 0);
        write_token_shard(path, val_.data(), val_.size());
        val_shards_.push_back(path);
        val_ = {};  // its memory is not needed any more
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
    OnTrainShard on_train_shard_;
    std::vector<Token> val_, train_;
    bool val_written_ = false;
    size_t val_count_ = 0, train_count_ = 0;
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

// What a resume state must match: the inputs as they are on disk and every option that
// changes the token stream or its cutting into shards.
nlohmann::ordered_json resume_fingerprint(const PrepareOptions& options,
                                          const std::vector<fs::path>& inputs,
                                          const DocumentEncoder& encoder, size_t token_bytes) {
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    for (const auto& input : inputs) {
        std::error_code ec;
        const auto time = fs::last_write_time(input, ec);
        files.push_back({{"path", fs::absolute(input).string()},
                         {"bytes", fs::file_size(input, ec)},
                         {"mtime", static_cast<int64_t>(time.time_since_epoch().count())}});
    }
    return {
        {"inputs", files},
        {"shard_tokens", options.shard_tokens},
        {"val_tokens", options.val_tokens},
        {"token_bytes", token_bytes},
        {"tokenizer", encoder.description()},
        {"text_column", options.corpus.text_column},
        {"min_score", options.corpus.min_score ? nlohmann::ordered_json(*options.corpus.min_score)
                                               : nlohmann::ordered_json(nullptr)},
        {"score_column", options.corpus.score_column}};
}

// A shard of an earlier run is kept only when it is whole: header plus `tokens` tokens.
bool shard_complete(const fs::path& path, size_t tokens, size_t token_bytes) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    return !ec && size == kShardHeaderInts * sizeof(int32_t) + tokens * token_bytes;
}

// The resume state of an earlier run with the same fingerprint whose shards are all whole,
// or null.
nlohmann::ordered_json load_resume_state(const PrepareOptions& options, const fs::path& path,
                                         const nlohmann::ordered_json& fingerprint,
                                         size_t token_bytes) {
    std::error_code ec;
    if (!options.resume || !fs::is_regular_file(path, ec)) return nullptr;
    nlohmann::ordered_json state;
    try {
        state = nlohmann::ordered_json::parse(read_file(path));
        if (state.at("fingerprint") != fingerprint) return nullptr;
        const size_t val = state.at("val_tokens").get<size_t>();
        if (val > 0 && !shard_complete(options.out_dir / shard_name(options.name, "val", 0), val,
                                       token_bytes)) {
            return nullptr;
        }
        const auto sizes = state.at("train_shards").get<std::vector<size_t>>();
        for (size_t i = 0; i < sizes.size(); ++i) {
            if (!shard_complete(options.out_dir / shard_name(options.name, "train", i), sizes[i],
                                token_bytes)) {
                return nullptr;
            }
        }
        state.at("input").get<size_t>();
        state.at("document").get<size_t>();
        state.at("skip_tokens").get<size_t>();
        state.at("documents_before").get<size_t>();
        if (!state.at("inputs").is_array()) return nullptr;
    } catch (const nlohmann::json::exception&) {
        return nullptr;  // a damaged state: start over
    } catch (const Error&) {
        return nullptr;
    }
    return state;
}

template <typename Token>
PrepareResult prepare_with(const PrepareOptions& options, DocumentEncoder& encoder) {
    check(!options.inputs.empty(), "prepare: no input files given");
    check(!options.out_dir.empty(), "prepare: no output folder given");
    check(!options.name.empty() && options.name.find('/') == std::string::npos,
          "prepare: the data set name {:?} must be non-empty and contain no '/'", options.name);
    check(options.shard_tokens > 0, "prepare: --shard-tokens must be positive");

    const std::vector<fs::path> inputs = expand_corpus_inputs(options.inputs);
    std::vector<uint64_t> sizes;
    uint64_t total_bytes = 0;
    for (const auto& input : inputs) {
        std::error_code ec;
        const auto size = fs::file_size(input, ec);
        check(!ec, "{}: cannot read input ({})", input.string(), ec.message());
        sizes.push_back(size);
        total_bytes += size;
    }
    std::error_code ec;
    fs::create_directories(options.out_dir, ec);
    check(!ec, "{}: cannot create the output folder ({})", options.out_dir.string(), ec.message());

    PrepareResult result;
    nlohmann::ordered_json inputs_json = nlohmann::ordered_json::array();
    const fs::path state_path = options.out_dir / (options.name + ".prepare-state.json");
    const auto fingerprint = resume_fingerprint(options, inputs, encoder, sizeof(Token));
    // Saved after every train shard: where a later run picks up.
    const auto save_state = [&](const ShardWriter<Token>& writer, const StreamPosition& at) {
        const nlohmann::ordered_json state = {{"fingerprint", fingerprint},
                                              {"val_tokens", writer.val_count()},
                                              {"train_shards", writer.train_sizes()},
                                              {"input", at.input},
                                              {"document", at.document},
                                              {"skip_tokens", at.skip_tokens},
                                              {"documents_before", result.documents},
                                              {"inputs", inputs_json}};
        write_file_atomic(state_path, state.dump() + "\n");
        if (options.after_train_shard) options.after_train_shard(writer.train_shards().size());
    };
    ShardWriter<Token>* writer_ptr = nullptr;
    ShardWriter<Token> writer(options, encoder.vocab_size(),
                              [&](const StreamPosition& at) { save_state(*writer_ptr, at); });
    writer_ptr = &writer;

    StreamPosition start;
    const auto state = load_resume_state(options, state_path, fingerprint, sizeof(Token));
    if (!state.is_null()) {
        writer.restore(state["val_tokens"].get<size_t>(),
                       state["train_shards"].get<std::vector<size_t>>());
        start = {state["input"].get<size_t>(), state["document"].get<size_t>(),
                 state["skip_tokens"].get<size_t>()};
        result.documents = state["documents_before"].get<size_t>();
        inputs_json = state["inputs"];
        result.resumed_train_shards = writer.train_shards().size();
    }

    std::vector<std::string> batch;
    std::vector<std::vector<int>> tokens;
    uint64_t bytes_before = 0;
    for (size_t i = 0; i < start.input && i < inputs.size(); ++i) bytes_before += sizes[i];
    const auto t0 = std::chrono::steady_clock::now();
    size_t tokens_this_run = 0;
    {
        std::unique_ptr<ProgressBar> progress;
        if (options.show_progress) {
            progress = std::make_unique<ProgressBar>("prepare", kilobytes(total_bytes), "kB");
        }
        const auto show = [&](uint64_t bytes, size_t documents) {
            if (!progress) return;
            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            progress->update(kilobytes(bytes),
                             fmt::format("{} docs, {} tokens, {:.0f} tokens/s", documents,
                                         writer.val_count() + writer.train_count(),
                                         seconds > 0 ? tokens_this_run / seconds : 0.0));
        };
        for (size_t input = start.input; input < inputs.size(); ++input) {
            const fs::path& path = inputs[input];
            DocumentReader reader(path, options.corpus);
            size_t documents = 0;
            std::string document;
            if (input == start.input && !state.is_null()) {
                // Documents whose tokens are all in the kept shards: read, not tokenized.
                for (; documents < start.document; ++documents) {
                    check(reader.next(document),
                          "{}: has fewer documents than the interrupted run read ({}); remove {} "
                          "to start over",
                          path.string(), start.document, state_path.string());
                }
                show(bytes_before + reader.bytes_read(), result.documents + documents);
            }
            bool more = true;
            while (more) {
                batch.clear();
                size_t batch_bytes = 0;
                while (batch.size() < kBatchDocuments && batch_bytes < kBatchBytes) {
                    if (!reader.next(document)) {
                        more = false;
                        break;
                    }
                    batch_bytes += document.size();
                    batch.push_back(std::move(document));
                }
                encoder.encode_documents(batch, tokens);
                for (size_t k = 0; k < batch.size(); ++k) {
                    const StreamPosition at{input, documents + k, 0};
                    const bool resumes_here =
                        !state.is_null() && input == start.input && at.document == start.document;
                    const size_t skip = resumes_here ? start.skip_tokens : 0;
                    tokens_this_run += tokens[k].size() - std::min(skip, tokens[k].size());
                    writer.add(tokens[k], at, skip);
                }
                documents += batch.size();
                show(bytes_before + reader.bytes_read(), result.documents + documents);
            }
            bytes_before += reader.file_size();
            result.documents += documents;
            inputs_json.push_back({{"path", fs::absolute(path).string()},
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
        {"text_column", options.corpus.text_column},
        {"min_score", options.corpus.min_score ? nlohmann::ordered_json(*options.corpus.min_score)
                                               : nlohmann::ordered_json(nullptr)},
        {"inputs", inputs_json},
        {"documents", result.documents},
        {"train_tokens", result.train_tokens},
        {"val_tokens", result.val_tokens},
        {"shard_tokens", options.shard_tokens},
        {"val_shards", val_json},
        {"train_shards", shards_json},
    };
    write_file_atomic(options.out_dir / "prepare.json", doc.dump(2) + "\n");
    fs::remove(state_path, ec);  // finished: nothing to resume
    return result;
}

}  // namespace

}  // namespace greenmoe

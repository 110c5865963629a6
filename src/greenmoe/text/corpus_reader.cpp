// Corpus file readers: plain / gzip / zstd byte sources, .txt / .jsonl documents and the text
// column of Parquet files.
#include "greenmoe/text/corpus_reader.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/io/parquet/parquet_reader.h"

namespace greenmoe {

namespace {

constexpr size_t kChunk = size_t{1} << 20;
constexpr std::string_view kSeparator = "<|endoftext|>";

// The raw file, read in chunks, counting bytes.
class RawFile {
  public:
    explicit RawFile(const std::filesystem::path& path) : path_(path) {
        file_ = std::fopen(path.c_str(), "rb");
        check(file_ != nullptr, "{}: cannot open ({})", path.string(), std::strerror(errno));
    }
    ~RawFile() {
        if (file_) std::fclose(file_);
    }
    RawFile(const RawFile&) = delete;
    RawFile& operator=(const RawFile&) = delete;

    size_t read(char* buffer, size_t capacity) {
        const size_t n = std::fread(buffer, 1, capacity, file_);
        check(n > 0 || !std::ferror(file_), "{}: read failed ({})", path_.string(),
              std::strerror(errno));
        bytes_ += n;
        return n;
    }
    uint64_t bytes() const { return bytes_; }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
    std::FILE* file_ = nullptr;
    uint64_t bytes_ = 0;
};

class PlainSource final : public ByteSource {
  public:
    explicit PlainSource(const std::filesystem::path& path) : file_(path) {}
    size_t read(char* buffer, size_t capacity) override { return file_.read(buffer, capacity); }
    uint64_t raw_bytes_read() const override { return file_.bytes(); }

  private:
    RawFile file_;
};

// gzip through zlib; concatenated members (as `cat a.gz b.gz` or pigz make) are read
// one after another, like gunzip does.
class GzipSource final : public ByteSource {
  public:
    explicit GzipSource(const std::filesystem::path& path) : file_(path), in_(kChunk) {
        std::memset(&stream_, 0, sizeof stream_);
        // 15 + 32: full window, and accept a gzip or zlib header.
        check(inflateInit2(&stream_, 15 + 32) == Z_OK, "{}: cannot start zlib", path.string());
    }
    ~GzipSource() override { inflateEnd(&stream_); }

    size_t read(char* buffer, size_t capacity) override {
        stream_.next_out = reinterpret_cast<Bytef*>(buffer);
        stream_.avail_out = static_cast<uInt>(capacity);
        while (stream_.avail_out == capacity && !done_) {
            if (stream_.avail_in == 0 && !file_eof_) {
                const size_t n = file_.read(in_.data(), in_.size());
                file_eof_ = n == 0;
                stream_.next_in = reinterpret_cast<Bytef*>(in_.data());
                stream_.avail_in = static_cast<uInt>(n);
            }
            if (stream_.avail_in == 0 && file_eof_ && !in_member_) {
                done_ = true;
                break;
            }
            // With no input left, inflate may still flush output it holds back.
            in_member_ = true;
            const int rc = inflate(&stream_, Z_NO_FLUSH);
            if (rc == Z_STREAM_END) {
                in_member_ = false;
                inflateReset(&stream_);
            } else if (rc == Z_BUF_ERROR && file_eof_ && stream_.avail_out == capacity) {
                fail("{}: gzip data is truncated", file_.path().string());
            } else {
                check(rc == Z_OK || rc == Z_BUF_ERROR, "{}: corrupt gzip data ({})",
                      file_.path().string(), stream_.msg ? stream_.msg : "zlib error");
            }
        }
        return capacity - stream_.avail_out;
    }
    uint64_t raw_bytes_read() const override { return file_.bytes(); }

  private:
    RawFile file_;
    std::vector<char> in_;
    z_stream stream_;
    bool in_member_ = false, file_eof_ = false, done_ = false;
};

// zstd's streaming API; multiple frames are read in sequence.
class ZstdSource final : public ByteSource {
  public:
    explicit ZstdSource(const std::filesystem::path& path)
        : file_(path), in_(ZSTD_DStreamInSize()), stream_(ZSTD_createDStream()) {
        check(stream_ != nullptr, "{}: cannot start zstd", path.string());
        ZSTD_initDStream(stream_);
    }
    ~ZstdSource() override { ZSTD_freeDStream(stream_); }

    size_t read(char* buffer, size_t capacity) override {
        ZSTD_outBuffer out{buffer, capacity, 0};
        while (out.pos == 0 && !done_) {
            if (input_.pos == input_.size && !file_eof_) {
                const size_t n = file_.read(in_.data(), in_.size());
                file_eof_ = n == 0;
                input_ = ZSTD_inBuffer{in_.data(), n, 0};
            }
            const bool starved = input_.pos == input_.size && file_eof_;
            if (starved && !in_frame_) {
                done_ = true;
                break;
            }
            // With no input left, zstd may still flush output it holds back.
            const size_t rc = ZSTD_decompressStream(stream_, &out, &input_);
            check(!ZSTD_isError(rc), "{}: corrupt zstd data ({})", file_.path().string(),
                  ZSTD_getErrorName(rc));
            in_frame_ = rc != 0;  // 0: a frame just ended
            check(!(starved && in_frame_ && out.pos == 0), "{}: zstd data is truncated",
                  file_.path().string());
        }
        return out.pos;
    }
    uint64_t raw_bytes_read() const override { return file_.bytes(); }

  private:
    RawFile file_;
    std::vector<char> in_;
    ZSTD_DStream* stream_;
    ZSTD_inBuffer input_{nullptr, 0, 0};
    bool in_frame_ = false, file_eof_ = false, done_ = false;
};

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

enum class Compression { kNone, kGzip, kZstd };

// Splits "x.jsonl.gz" into (".jsonl", kGzip).
std::pair<std::string, Compression> file_kind(const std::filesystem::path& path) {
    std::filesystem::path p = path.filename();
    Compression compression = Compression::kNone;
    const std::string ext = lower(p.extension().string());
    if (ext == ".gz") {
        compression = Compression::kGzip;
        p = p.stem();
    } else if (ext == ".zst" || ext == ".zstd") {
        compression = Compression::kZstd;
        p = p.stem();
    }
    return {lower(p.extension().string()), compression};
}

bool is_corpus_file(const std::filesystem::path& path) {
    const std::string ext = file_kind(path).first;
    return ext == ".txt" || ext == ".jsonl" ||
           (ext == ".parquet" && lower(path.extension().string()) == ".parquet");
}

bool is_blank(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

}  // namespace

std::unique_ptr<ByteSource> open_byte_source(const std::filesystem::path& path) {
    switch (file_kind(path).second) {
        case Compression::kGzip:
            return std::make_unique<GzipSource>(path);
        case Compression::kZstd:
            return std::make_unique<ZstdSource>(path);
        case Compression::kNone:
            break;
    }
    return std::make_unique<PlainSource>(path);
}

std::vector<std::filesystem::path> expand_corpus_inputs(
    const std::vector<std::filesystem::path>& inputs) {
    std::vector<std::filesystem::path> out;
    for (const auto& input : inputs) {
        std::error_code ec;
        if (!std::filesystem::is_directory(input, ec)) {
            out.push_back(input);
            continue;
        }
        std::vector<std::filesystem::path> files;
        for (const auto& entry : std::filesystem::directory_iterator(input, ec)) {
            if (entry.is_regular_file() && is_corpus_file(entry.path())) {
                files.push_back(entry.path());
            }
        }
        check(!ec, "{}: cannot list the folder ({})", input.string(), ec.message());
        check(!files.empty(),
              "{}: the folder holds no corpus files (.parquet, .jsonl or .txt, the last two "
              "optionally .gz or .zst)",
              input.string());
        std::sort(files.begin(), files.end());
        out.insert(out.end(), files.begin(), files.end());
    }
    return out;
}

// The Parquet file, the row group being read and its decoded text and score columns.
struct DocumentReader::ParquetState {
    parquet::ParquetFile file;
    size_t group = 0, row = 0, text_value = 0, score_value = 0;
    bool loaded = false;
    parquet::FlatColumn text, score;
};

DocumentReader::DocumentReader(const std::filesystem::path& path, const CorpusOptions& options)
    : path_(path), options_(options) {
    const auto [ext, compression] = file_kind(path);
    const bool parquet = ext == ".parquet" && compression == Compression::kNone;
    check(ext == ".txt" || ext == ".jsonl" || parquet,
          "{}: unsupported corpus file; expected .parquet, or .txt or .jsonl optionally followed "
          "by .gz or .zst",
          path.string());
    jsonl_ = ext == ".jsonl";
    std::error_code ec;
    file_size_ = std::filesystem::file_size(path, ec);
    check(!ec, "{}: cannot open ({})", path.string(), ec.message());
    if (parquet) {
        parquet_ = std::make_unique<ParquetState>(
            ParquetState{parquet::ParquetFile::open(path), 0, 0, 0, 0, false, {}, {}});
        // Missing columns are named before any work, not at the first row group.
        const parquet::ParquetFile& file = parquet_->file;
        std::string names;
        for (const std::string& name : file.field_names()) {
            if (!names.empty()) names += ", ";
            names += name;
        }
        check(file.has_field(options_.text_column),
              "{}: no text column '{}' (--text-column); the file has: {}", path.string(),
              options_.text_column, names);
        check(!options_.min_score || file.has_field(options_.score_column),
              "{}: no score column '{}' for --min-score; the file has: {}", path.string(),
              options_.score_column, names);
        return;
    }
    check(!options_.min_score || jsonl_,
          "{}: --min-score filters .jsonl and .parquet documents by their '{}' field; a .txt "
          "file has none",
          path.string(), options_.score_column);
    source_ = open_byte_source(path);
}

DocumentReader::~DocumentReader() = default;
DocumentReader::DocumentReader(DocumentReader&&) noexcept = default;
DocumentReader& DocumentReader::operator=(DocumentReader&&) noexcept = default;

uint64_t DocumentReader::bytes_read() const {
    if (parquet_) {
        // Row groups read so far: the end of the last one's column data.
        const size_t done = parquet_->loaded ? parquet_->group + 1 : parquet_->group;
        return done == 0 ? 0 : parquet_->file.row_group_end(done - 1);
    }
    return source_ ? source_->raw_bytes_read() : 0;
}

bool DocumentReader::fill() {
    if (eof_) return false;
    // Drop what was returned, so the buffer holds only the current document's start.
    if (start_ > 0) {
        buffer_.erase(0, start_);
        scan_ -= start_;
        start_ = 0;
    }
    const size_t old_size = buffer_.size();
    buffer_.resize(old_size + kChunk);
    const size_t n = source_->read(buffer_.data() + old_size, kChunk);
    buffer_.resize(old_size + n);
    if (n == 0) eof_ = true;
    return n > 0;
}

bool DocumentReader::next(std::string& document) {
    if (parquet_) return next_parquet(document);
    return jsonl_ ? next_jsonl(document) : next_txt(document);
}

namespace {

// A row's score as a double; nullopt for null.
std::optional<double> score_at(const parquet::FlatColumn& column, size_t row, size_t& value) {
    if (!column.has_value(row)) return std::nullopt;
    const size_t i = value++;
    switch (column.type) {
        case parquet::PhysicalType::kFloat:
        case parquet::PhysicalType::kDouble:
            return column.values.reals[i];
        case parquet::PhysicalType::kByteArray:
            return std::nullopt;
        default:
            return static_cast<double>(column.values.ints[i]);
    }
}

}  // namespace

bool DocumentReader::next_parquet(std::string& document) {
    ParquetState& p = *parquet_;
    while (true) {
        if (!p.loaded) {
            if (p.group >= p.file.num_row_groups()) return false;
            p.file.read_flat(p.group, options_.text_column, p.text);
            check(p.text.type == parquet::PhysicalType::kByteArray,
                  "{}: row group {}, column '{}': the text column holds {} values, not strings",
                  path_.string(), p.group, options_.text_column, parquet::name_of(p.text.type));
            if (options_.min_score) {
                p.file.read_flat(p.group, options_.score_column, p.score);
                check(p.score.type != parquet::PhysicalType::kByteArray,
                      "{}: row group {}, column '{}': the score column holds strings, not numbers",
                      path_.string(), p.group, options_.score_column);
            }
            p.row = p.text_value = p.score_value = 0;
            p.loaded = true;
        }
        if (p.row >= p.text.rows) {
            p.loaded = false;
            ++p.group;
            continue;
        }
        const size_t row = p.row++;
        const bool has_text = p.text.has_value(row);
        std::string* text = has_text ? &p.text.values.strings[p.text_value++] : nullptr;
        if (options_.min_score) {
            const auto score = score_at(p.score, row, p.score_value);
            if (!score || *score < *options_.min_score) continue;
        }
        if (text == nullptr || text->empty()) continue;
        document = std::move(*text);
        return true;
    }
}

bool DocumentReader::next_txt(std::string& document) {
    while (true) {
        const size_t at = buffer_.find(kSeparator, scan_);
        if (at != std::string::npos) {
            document.assign(buffer_, start_, at - start_);
            start_ = scan_ = at + kSeparator.size();
            if (is_blank(document)) continue;
            return true;
        }
        // A separator may straddle the chunk boundary: rescan its possible start.
        scan_ = std::max(start_, buffer_.size() - std::min(buffer_.size(), kSeparator.size() - 1));
        if (!fill()) {
            if (start_ >= buffer_.size()) return false;
            document.assign(buffer_, start_, std::string::npos);
            start_ = scan_ = buffer_.size();
            return !is_blank(document);
        }
    }
}

bool DocumentReader::next_jsonl(std::string& document) {
    while (true) {
        size_t end = buffer_.find('\n', scan_);
        if (end == std::string::npos) {
            scan_ = buffer_.size();
            if (fill()) continue;
            if (start_ >= buffer_.size()) return false;
            end = buffer_.size();  // a last line without '\n'
        }
        std::string_view line(buffer_.data() + start_, end - start_);
        start_ = scan_ = std::min(end + 1, buffer_.size());
        ++line_;
        if (is_blank(line)) continue;
        nlohmann::json object;
        try {
            object = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            fail("{}:{}: not valid JSON ({})", path_.string(), line_, e.what());
        }
        check(object.is_object(), "{}:{}: expected a JSON object with a \"text\" string",
              path_.string(), line_);
        const auto it = object.find(options_.text_column);
        check(it != object.end() && it->is_string(),
              "{}:{}: expected a \"{}\" field holding a string", path_.string(), line_,
              options_.text_column);
        if (options_.min_score) {
            const auto score = object.find(options_.score_column);
            if (score == object.end() || !score->is_number() ||
                score->get<double>() < *options_.min_score) {
                continue;
            }
        }
        document = it->get<std::string>();
        if (document.empty()) continue;
        return true;
    }
}

}  // namespace greenmoe

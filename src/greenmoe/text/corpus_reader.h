// Streaming documents out of one corpus file: .txt or .jsonl, optionally .gz or .zst, or a
// Parquet file's text column.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace greenmoe {

// Decompressed bytes of a file, read in chunks; counts the raw (compressed) bytes read.
class ByteSource {
  public:
    virtual ~ByteSource() = default;
    // Fills up to `capacity` bytes; returns 0 only at the end of the data. Throws Error
    // naming the file for corrupt or truncated compressed data.
    virtual size_t read(char* buffer, size_t capacity) = 0;
    virtual uint64_t raw_bytes_read() const = 0;
};

// Picks plain, gzip (.gz) or zstd (.zst) by the file's extension.
std::unique_ptr<ByteSource> open_byte_source(const std::filesystem::path& path);

// Which field holds a document, and which documents to keep.
struct CorpusOptions {
    std::string text_column = "text";  // .jsonl field / Parquet column of the text
    // Keep only documents whose `score_column` is at least this (FineWeb-Edu's int_score);
    // a document without a score is dropped.
    std::optional<double> min_score;
    std::string score_column = "int_score";
};

// Input paths with each folder replaced by the corpus files it holds (.parquet, .jsonl,
// .txt, optionally .gz / .zst), sorted by name; files are kept as given. Throws Error for a
// missing path or a folder without corpus files.
std::vector<std::filesystem::path> expand_corpus_inputs(
    const std::vector<std::filesystem::path>& inputs);

// Documents, in file order:
//  - .txt: the whole file is one document, unless it contains "<|endoftext|>", which
//    separates documents. Segments that are empty or only whitespace (as around a
//    trailing separator) are skipped; others keep their bytes exactly.
//  - .jsonl: one JSON object per line, the document is its "text" string. Blank lines
//    are skipped, as are empty texts; a malformed line or a missing or non-string
//    "text" throws Error naming the file and line.
//  - .parquet: the text column's string in each row (nulls and empty strings skipped), read
//    row group by row group, with only the text and score columns decoded.
// .txt and .jsonl may end in .gz or .zst. Memory: one read chunk (one row group's columns for
// Parquet) plus the current document.
class DocumentReader {
  public:
    explicit DocumentReader(const std::filesystem::path& path, const CorpusOptions& options = {});
    ~DocumentReader();
    DocumentReader(DocumentReader&&) noexcept;
    DocumentReader& operator=(DocumentReader&&) noexcept;

    // Stores the next document in `document`; false at the end of the file.
    bool next(std::string& document);

    // Raw bytes read from the file so far (compressed bytes for .gz / .zst), and the
    // file's size: together they give progress.
    uint64_t bytes_read() const;
    uint64_t file_size() const { return file_size_; }
    const std::filesystem::path& path() const { return path_; }

  private:
    bool fill();  // appends one chunk to buffer_; false at the end of the data
    bool next_txt(std::string& document);
    bool next_jsonl(std::string& document);
    bool next_parquet(std::string& document);

    struct ParquetState;

    std::filesystem::path path_;
    CorpusOptions options_;
    std::unique_ptr<ByteSource> source_;
    std::unique_ptr<ParquetState> parquet_;
    bool jsonl_ = false;
    uint64_t file_size_ = 0;
    std::string buffer_;
    size_t start_ = 0;  // first byte of buffer_ not yet returned
    size_t scan_ = 0;   // where the search for the next separator resumes
    size_t line_ = 0;   // .jsonl lines consumed
    bool eof_ = false;
};

}  // namespace greenmoe

// Readers for the HellaSwag validation set: llama.cpp's 6-line text format and the raw jsonl.
#include "greenmoe/eval/hellaswag_data.h"

#include <bzlib.h>

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "greenmoe/core/error.h"
#include "greenmoe/io/parquet/parquet_reader.h"
#include "greenmoe/text/python_str.h"

namespace greenmoe {
namespace {

constexpr size_t kInChunk = 1 << 16;
constexpr size_t kOutChunk = 1 << 18;
constexpr int kLinesPerItem = 6;

const char* bz2_error_name(int code) {
    switch (code) {
        case BZ_DATA_ERROR:
            return "corrupt data";
        case BZ_DATA_ERROR_MAGIC:
            return "not a bzip2 stream";
        case BZ_MEM_ERROR:
            return "out of memory";
        case BZ_PARAM_ERROR:
            return "bad parameters";
        case BZ_CONFIG_ERROR:
            return "libbz2 misconfigured";
        default:
            return "unknown libbz2 error";
    }
}

// Yields the lines of a plain or bzip2-compressed file while decompressing, so that the whole
// unpacked text (7.8 MB for the validation set) never has to sit in memory at once.
// Decompressed HellaSwag text greenmoe holds at most (the validation set is 7.8 MB).
constexpr size_t kMaxDecompressedBytes = size_t{1} << 30;

class LineReader {
  public:
    explicit LineReader(const std::filesystem::path& path)
        : name_(path.string()), in_(path, std::ios::binary) {
        check(in_.is_open(), "{}: cannot open the HellaSwag file", name_);
        char magic[3] = {};
        in_.read(magic, 3);
        bool has_magic = in_.gcount() == 3 && std::string_view(magic, 3) == "BZh";
        in_.clear();
        in_.seekg(0);
        bz2_ = has_magic || path.extension() == ".bz2";
        if (bz2_) {
            in_buf_.resize(kInChunk);
            out_buf_.resize(kOutChunk);
            start_stream();
        }
    }
    ~LineReader() {
        if (stream_open_) BZ2_bzDecompressEnd(&stream_);
    }
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // The next line without its '\n' (and without a trailing '\r'); false at end of file.
    bool next(std::string& line) {
        for (;;) {
            size_t newline = pending_.find('\n', pos_);
            if (newline != std::string::npos) {
                line.assign(pending_, pos_, newline - pos_);
                pos_ = newline + 1;
                return finish_line(line);
            }
            pending_.erase(0, pos_);
            pos_ = 0;
            if (!fill()) {
                if (pending_.empty()) return false;
                line = std::move(pending_);
                pending_.clear();
                return finish_line(line);
            }
        }
    }

    size_t line_number() const { return line_number_; }
    const std::string& name() const { return name_; }

  private:
    bool finish_line(std::string& line) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        ++line_number_;
        return true;
    }

    void start_stream() {
        stream_ = bz_stream{};
        int rc = BZ2_bzDecompressInit(&stream_, 0, 0);
        check(rc == BZ_OK, "{}: cannot start bzip2 decompression ({})", name_, bz2_error_name(rc));
        stream_open_ = true;
    }

    // Appends more text to pending_; false when the file is exhausted.
    bool fill() {
        if (!bz2_) {
            if (eof_) return false;
            size_t old = pending_.size();
            pending_.resize(old + kOutChunk);
            in_.read(pending_.data() + old, static_cast<std::streamsize>(kOutChunk));
            size_t got = static_cast<size_t>(in_.gcount());
            pending_.resize(old + got);
            if (got < kOutChunk) eof_ = true;
            return got > 0;
        }
        // The whole file is decompressed before any of it is parsed: bzip2 checks a block's
        // CRC only at its end, so text from a corrupt block would otherwise be read as items
        // first and fail as a garbled label or ending.
        if (eof_) return false;
        while (decompress_some()) {
        }
        eof_ = true;
        return !pending_.empty();
    }

    // One step of decompression into pending_; false at the end of the file.
    bool decompress_some() {
        if (stream_.avail_in == 0 && !in_eof_) {
            in_.read(in_buf_.data(), static_cast<std::streamsize>(in_buf_.size()));
            stream_.next_in = in_buf_.data();
            stream_.avail_in = static_cast<unsigned>(in_.gcount());
            if (stream_.avail_in == 0) in_eof_ = true;
        }
        if (stream_.avail_in == 0 && in_eof_) {
            check(stream_ended_,
                  "{}: corrupt bzip2 file: it ends in the middle of a stream (at byte {}; "
                  "truncated?)",
                  name_, compressed_offset());
            return false;
        }
        if (stream_ended_) {
            // Several streams back to back (as pbzip2 writes) decompress to their
            // concatenation.
            char* next_in = stream_.next_in;
            unsigned avail_in = stream_.avail_in;
            earlier_streams_bytes_ += stream_bytes();
            BZ2_bzDecompressEnd(&stream_);
            stream_open_ = false;
            start_stream();
            stream_.next_in = next_in;
            stream_.avail_in = avail_in;
            stream_ended_ = false;
        }
        stream_.next_out = out_buf_.data();
        stream_.avail_out = static_cast<unsigned>(out_buf_.size());
        const int rc = BZ2_bzDecompress(&stream_);
        if (rc != BZ_OK && rc != BZ_STREAM_END) {
            fail("{}: corrupt bzip2 data near byte {} of the file ({})", name_, compressed_offset(),
                 bz2_error_name(rc));
        }
        if (rc == BZ_STREAM_END) stream_ended_ = true;
        pending_.append(out_buf_.data(), out_buf_.size() - stream_.avail_out);
        // The whole text is held before parsing: a file that inflates without end (a
        // "bomb", or not HellaSwag at all) is refused instead of filling memory.
        check(pending_.size() <= kMaxDecompressedBytes,
              "{}: decompresses to more than {} MiB; HellaSwag's validation set is 8 MiB (not "
              "a HellaSwag file?)",
              name_, kMaxDecompressedBytes >> 20);
        return true;
    }

    uint64_t stream_bytes() const {
        return (uint64_t{stream_.total_in_hi32} << 32) | stream_.total_in_lo32;
    }
    // Bytes of the compressed file consumed so far.
    uint64_t compressed_offset() const { return earlier_streams_bytes_ + stream_bytes(); }

    std::string name_;
    std::ifstream in_;
    bool bz2_ = false;
    bz_stream stream_{};
    bool stream_open_ = false;
    bool stream_ended_ = false;
    bool in_eof_ = false;
    uint64_t earlier_streams_bytes_ = 0;
    bool eof_ = false;
    std::vector<char> in_buf_;
    std::vector<char> out_buf_;
    std::string pending_;
    size_t pos_ = 0;
    size_t line_number_ = 0;
};

std::string strip(std::string_view text) {
    return python_strip(text);
}

// Python's str.replace: one left-to-right pass over non-overlapping occurrences.
std::string replace_all(const std::string& text, std::string_view from, std::string_view to) {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    for (;;) {
        size_t hit = text.find(from, pos);
        if (hit == std::string::npos) break;
        out.append(text, pos, hit - pos);
        out.append(to);
        pos = hit + from.size();
    }
    out.append(text, pos, std::string::npos);
    return out;
}

// re.sub(r"\[.*?\]", "", text): '.' does not match '\n', so a '[' whose next ']' lies beyond
// a newline is kept.
std::string remove_bracketed(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        if (text[i] == '[') {
            size_t j = i + 1;
            while (j < text.size() && text[j] != ']' && text[j] != '\n') ++j;
            if (j < text.size() && text[j] == ']') {
                i = j + 1;
                continue;
            }
        }
        out.push_back(text[i]);
        ++i;
    }
    return out;
}

std::string capitalize(const std::string& text) {
    return python_capitalize(text);
}

std::string where(const std::string& file, size_t line) {
    return fmt::format("{}:{}", file, line);
}

HellaSwagItem make_text_item(const std::array<std::string, kLinesPerItem>& lines,
                             const std::string& file, size_t first_line) {
    HellaSwagItem item;
    item.source = where(file, first_line);
    item.context = lines[0];
    size_t colon = item.context.find(": ");
    if (colon != std::string::npos) item.activity_label = item.context.substr(0, colon);
    std::string label = strip(lines[1]);
    check(label.size() == 1 && label[0] >= '0' && label[0] <= '3',
          "{}:{}: expected the label 0-3 (2nd line of the item starting at line {}), got \"{}\"",
          file, first_line + 1, first_line, lines[1]);
    item.label = label[0] - '0';
    for (size_t i = 0; i < 4; ++i) item.endings[i] = lines[2 + i];
    item.raw_context = item.context;
    item.raw_endings = item.endings;
    return item;
}

const std::string& json_string_field(const nlohmann::json& object, const char* field,
                                     const std::string& at) {
    auto it = object.find(field);
    check(it != object.end(), "{}: missing field \"{}\" (expected a string)", at, field);
    check(it->is_string(), "{}: field \"{}\" must be a string, got {}", at, field, it->type_name());
    return it->get_ref<const std::string&>();
}

int json_label(const nlohmann::json& object, const std::string& at) {
    auto it = object.find("label");
    check(it != object.end(), "{}: missing field \"label\" (expected 0-3)", at);
    if (it->is_number_integer()) {
        auto value = it->get<long long>();
        check(value >= 0 && value <= 3, "{}: expected \"label\" 0-3, got {}", at, value);
        return static_cast<int>(value);
    }
    // The Hugging Face copy of the data set stores the label as a string.
    if (it->is_string()) {
        const auto& text = it->get_ref<const std::string&>();
        check(text.size() == 1 && text[0] >= '0' && text[0] <= '3',
              "{}: expected \"label\" 0-3, got \"{}\"", at, text);
        return text[0] - '0';
    }
    fail("{}: expected \"label\" 0-3, got {}", at, it->dump());
}

}  // namespace

std::string hellaswag_preprocess(const std::string& text) {
    std::string out = strip(text);
    out = replace_all(out, " [title]", ". ");
    out = remove_bracketed(out);
    return replace_all(out, "  ", " ");
}

std::vector<HellaSwagItem> read_hellaswag_text(const std::filesystem::path& path, size_t limit) {
    LineReader reader(path);
    std::vector<HellaSwagItem> items;
    std::array<std::string, kLinesPerItem> lines;
    int have = 0;
    size_t first_line = 0;
    size_t blank_at_boundary = 0;  // a blank line between items is only fine at the end of the file
    std::string line;
    while ((limit == 0 || items.size() < limit) && reader.next(line)) {
        if (have == 0) {
            if (line.empty()) {
                if (blank_at_boundary == 0) blank_at_boundary = reader.line_number();
                continue;
            }
            check(blank_at_boundary == 0,
                  "{}:{}: expected the context line of an item, got an empty line", reader.name(),
                  blank_at_boundary);
            first_line = reader.line_number();
        }
        lines[static_cast<size_t>(have)] = std::move(line);
        if (++have == kLinesPerItem) {
            items.push_back(make_text_item(lines, reader.name(), first_line));
            have = 0;
        }
    }
    check(have == 0,
          "{}:{}: truncated item: the file ends after {} of the 6 lines (context, label, 4 "
          "endings) of the item "
          "starting at line {}",
          reader.name(), reader.line_number(), have, first_line);
    return items;
}

HellaSwagItem hellaswag_item_from_json(const nlohmann::json& doc, const std::string& at) {
    HellaSwagItem item;
    item.source = at;
    item.activity_label = json_string_field(doc, "activity_label", at);
    const std::string& ctx_a = json_string_field(doc, "ctx_a", at);
    const std::string& ctx_b = json_string_field(doc, "ctx_b", at);
    item.context =
        hellaswag_preprocess(item.activity_label + ": " + ctx_a + " " + capitalize(ctx_b));
    // rowanz's file has "ctx" = ctx_a + " " + ctx_b (just ctx_a when ctx_b is empty);
    // copies without it get the same text.
    if (doc.contains("ctx")) {
        item.raw_context = json_string_field(doc, "ctx", at);
    } else {
        item.raw_context = ctx_b.empty() ? ctx_a : ctx_a + " " + ctx_b;
    }
    auto endings = doc.find("endings");
    check(endings != doc.end(), "{}: missing field \"endings\" (expected a list of 4 strings)", at);
    check(
        endings->is_array() && endings->size() == 4,
        "{}: \"endings\" must be a list of 4 strings, got {}", at,
        endings->is_array() ? fmt::format("a list of {}", endings->size()) : endings->type_name());
    for (size_t i = 0; i < 4; ++i) {
        const auto& ending = (*endings)[i];
        check(ending.is_string(), "{}: \"endings\" must be a list of 4 strings, item {} is {}", at,
              i, ending.type_name());
        item.raw_endings[i] = ending.get_ref<const std::string&>();
        item.endings[i] = hellaswag_preprocess(item.raw_endings[i]);
    }
    item.label = json_label(doc, at);
    return item;
}

std::vector<HellaSwagItem> read_hellaswag_parquet(const std::filesystem::path& path, size_t limit) {
    std::vector<HellaSwagItem> items;
    size_t row = 0;
    for (const nlohmann::json& doc : parquet::read_parquet_rows(path)) {
        if (limit != 0 && items.size() >= limit) break;
        const std::string at = path.string() + " row " + std::to_string(++row);
        check(doc.is_object(), "{}: expected a row of named fields", at);
        items.push_back(hellaswag_item_from_json(doc, at));
    }
    return items;
}

std::vector<HellaSwagItem> read_hellaswag_jsonl(const std::filesystem::path& path, size_t limit) {
    const std::string file = path.string();
    std::ifstream in(path, std::ios::binary);
    check(in.is_open(), "{}: cannot open the HellaSwag file", file);
    std::vector<HellaSwagItem> items;
    std::string line;
    size_t line_number = 0;
    while ((limit == 0 || items.size() < limit) && std::getline(in, line)) {
        ++line_number;
        if (strip(line).empty()) continue;
        const std::string at = where(file, line_number);
        nlohmann::json doc;
        try {
            doc = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            // parse_error, or out_of_range for a number past double's range ("1e999").
            fail("{}: expected one JSON object per line ({})", at, e.what());
        }
        check(doc.is_object(), "{}: expected a JSON object, got {}", at, doc.type_name());
        items.push_back(hellaswag_item_from_json(doc, at));
    }
    check(!in.bad(), "{}: read error", file);
    return items;
}

std::vector<HellaSwagItem> read_hellaswag(const std::filesystem::path& path, size_t limit) {
    const auto extension = path.extension();
    if (extension == ".jsonl") return read_hellaswag_jsonl(path, limit);
    if (extension == ".txt" || extension == ".bz2") return read_hellaswag_text(path, limit);
    if (extension == ".parquet") return read_hellaswag_parquet(path, limit);
    fail("{}: unknown HellaSwag file type \"{}\" (expected .jsonl, .txt or .txt.bz2)",
         path.string(), extension.string());
}

}  // namespace greenmoe

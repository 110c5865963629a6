// JSON-lines files (log.jsonl): reading past a torn last line, appending whole lines.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace greenmoe {

struct JsonLinesText {
    std::string_view complete;  // the text up to and including its last complete line
    std::string warning;        // names the file and line when a torn last line was left out
};

// Leaves out a torn last line: one with no final '\n' that is not valid JSON, as a write
// cut short (a killed process, a full disk) leaves it. Every other line, malformed or
// not, stays in `complete` for the caller to parse and report with its line number.
JsonLinesText without_torn_last_line(std::string_view text, const std::string& file);

// Appends whole lines to a file: each line goes out in one write() on an O_APPEND
// descriptor, and a write that fails part-way (a full disk, a file size limit) is cut
// back off, so that the file never ends in half a line. Errors name the file.
class LineAppender {
  public:
    explicit LineAppender(std::filesystem::path path);
    ~LineAppender();
    LineAppender(const LineAppender&) = delete;
    LineAppender& operator=(const LineAppender&) = delete;

    // `line` must end in '\n'.
    void append(std::string_view line);

  private:
    std::filesystem::path path_;
    int fd_ = -1;
};

}  // namespace greenmoe

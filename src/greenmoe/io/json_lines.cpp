// Torn-line-tolerant JSON-lines reading and whole-line appending (see json_lines.h).
#include "greenmoe/io/json_lines.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <system_error>

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace {

std::string errno_text(int error) {
    return std::generic_category().message(error);
}

}  // namespace

JsonLinesText without_torn_last_line(std::string_view text, const std::string& file) {
    JsonLinesText out{text, {}};
    const size_t newline = text.rfind('\n');
    const size_t start = newline == std::string_view::npos ? 0 : newline + 1;
    const std::string_view last = text.substr(start);
    const bool blank =
        std::all_of(last.begin(), last.end(), [](unsigned char c) { return std::isspace(c) != 0; });
    if (blank || nlohmann::json::accept(last)) return out;
    const auto line =
        1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(start), '\n');
    out.complete = text.substr(0, start);
    out.warning = fmt::format(
        "{}:{}: the last line is cut off ({} bytes, no end of line: a write that did not "
        "finish); reading the lines before it",
        file, line, last.size());
    return out;
}

LineAppender::LineAppender(std::filesystem::path path) : path_(std::move(path)) {
    do {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    } while (fd_ < 0 && errno == EINTR);
    check(fd_ >= 0, "{}: cannot open for appending: {}", path_.string(), errno_text(errno));
}

LineAppender::~LineAppender() {
    if (fd_ >= 0) ::close(fd_);
}

void LineAppender::append(std::string_view line) {
    check(!line.empty() && line.back() == '\n', "{}: a line to append must end in a newline",
          path_.string());
    struct stat st {};
    check(::fstat(fd_, &st) == 0, "{}: cannot append: {}", path_.string(), errno_text(errno));
    const off_t before = st.st_size;
    size_t done = 0;
    int error = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            error = n < 0 ? errno : EIO;
            break;
        }
        done += static_cast<size_t>(n);
    }
    if (error == 0) return;
    // Whatever part of the line reached the file goes again: readers then see the lines
    // before it, whole.
    if (done > 0 && ::ftruncate(fd_, before) != 0) {
        fail(
            "{}: write failed ({}) after {} of {} bytes, and cutting the partial line off "
            "failed too ({}): the file ends in a torn line",
            path_.string(), errno_text(error), done, line.size(), errno_text(errno));
    }
    fail("{}: write failed: {}", path_.string(), errno_text(error));
}

}  // namespace greenmoe

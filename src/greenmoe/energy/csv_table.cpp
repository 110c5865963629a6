// CSV reading and writing (see csv_table.h).
#include "greenmoe/energy/csv_table.h"

#include <cerrno>
#include <cstdlib>

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace {

std::string trim(std::string_view s) {
    const auto is_blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    size_t b = 0, e = s.size();
    while (b < e && is_blank(s[b])) ++b;
    while (e > b && is_blank(s[e - 1])) --e;
    return std::string(s.substr(b, e - b));
}

}  // namespace

std::vector<CsvRecord> parse_csv_records(std::string_view text, std::string_view what) {
    std::vector<CsvRecord> records;
    CsvRecord record;
    std::string field;
    bool in_quotes = false, field_started = false;
    size_t line = 1;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_quotes) {
            if (c == '"') {
                if (i + 1 < text.size() && text[i + 1] == '"') {
                    field += '"';
                    ++i;
                } else {
                    in_quotes = false;
                }
            } else {
                if (c == '\n') ++line;
                field += c;
            }
            continue;
        }
        if (c == '"' && field.empty()) {
            in_quotes = true;
            field_started = true;
        } else if (c == ',') {
            record.fields.push_back(std::move(field));
            field.clear();
            field_started = true;
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
            if (field_started || !field.empty() || !record.fields.empty()) {
                record.fields.push_back(std::move(field));
                records.push_back(std::move(record));
            }
            ++line;
            record = CsvRecord{line, {}};
            field.clear();
            field_started = false;
        } else {
            field += c;
            field_started = true;
        }
    }
    check(!in_quotes, "{}: a quoted field opened on line {} is never closed", what, record.line);
    if (field_started || !field.empty() || !record.fields.empty()) {
        record.fields.push_back(std::move(field));
        records.push_back(std::move(record));
    }
    return records;
}

std::vector<std::vector<std::string>> parse_csv(std::string_view text, std::string_view what) {
    std::vector<std::vector<std::string>> records;
    for (CsvRecord& r : parse_csv_records(text, what)) records.push_back(std::move(r.fields));
    return records;
}

std::string csv_field(std::string_view value) {
    if (value.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(value);
    std::string out = "\"";
    for (char c : value) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

CsvTable::CsvTable(std::string_view text, std::string name, int skip_rows)
    : name_(std::move(name)) {
    auto records = parse_csv(text, name_);
    check(records.size() > size_t(skip_rows), "{}: expected a header row after {} unit row(s)",
          name_, skip_rows);
    header_ = records[skip_rows];
    for (auto& h : header_) h = trim(h);
    rows_.assign(std::make_move_iterator(records.begin() + skip_rows + 1),
                 std::make_move_iterator(records.end()));
}

size_t CsvTable::column(std::string_view header) const {
    for (size_t i = 0; i < header_.size(); ++i) {
        if (header_[i] == header) return i;
    }
    fail("{}: no column '{}' in its header", name_, header);
}

std::string CsvTable::text(size_t row, size_t column) const {
    const auto& r = rows_.at(row);
    return column < r.size() ? trim(r[column]) : std::string();
}

double CsvTable::number(size_t row, size_t column) const {
    const std::string s = text(row, column);
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    check(!s.empty() && end == s.c_str() + s.size() && errno == 0,
          "{}: row {} column '{}' should be a number, found '{}'", name_, row + 1,
          header_.at(column), s);
    return v;
}

double CsvTable::number_or(size_t row, size_t column, double missing) const {
    return text(row, column).empty() ? missing : number(row, column);
}

}  // namespace greenmoe

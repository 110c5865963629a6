// A small RFC 4180 CSV reader and writer for the Green Algorithms tables and emissions.csv.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace greenmoe {

// Splits CSV text into records of fields: quoted fields may hold commas, newlines and
// doubled quotes; CRLF and a missing final newline are accepted. `what` names the text in
// errors (an unterminated quote).
std::vector<std::vector<std::string>> parse_csv(std::string_view text, std::string_view what);

// The same, with the line each record starts on (1-based), for errors naming file:line.
struct CsvRecord {
    size_t line = 1;
    std::vector<std::string> fields;
};
std::vector<CsvRecord> parse_csv_records(std::string_view text, std::string_view what);

// One field as Python's csv module writes it: quoted only when it holds a comma, a quote
// or a line break.
std::string csv_field(std::string_view value);

// A table with a header row. Green Algorithms tables have a row of units above the
// header, which `skip_rows` drops.
class CsvTable {
  public:
    CsvTable(std::string_view text, std::string name, int skip_rows);

    const std::string& name() const { return name_; }
    size_t num_rows() const { return rows_.size(); }
    // Index of a header column; throws Error naming the table and the column when absent.
    size_t column(std::string_view header) const;
    // The field, trimmed of surrounding blanks ("" where the row is short).
    std::string text(size_t row, size_t column) const;
    // The field as a number; throws Error naming table, row and column when it is not one.
    double number(size_t row, size_t column) const;
    // As number(), but returns `missing` for an empty field.
    double number_or(size_t row, size_t column, double missing) const;

  private:
    std::string name_;
    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace greenmoe

// Walking each entry's schema path: keys for groups, arrays for repeated nodes, null where
// the definition level stops short.
#include "greenmoe/io/parquet/parquet_assemble.h"

#include "greenmoe/core/error.h"

namespace greenmoe::parquet {

namespace {

using nlohmann::json;

json value_json(const ColumnValues& values, size_t i) {
    switch (values.type) {
        case PhysicalType::kBoolean:
            return values.ints[i] != 0;
        case PhysicalType::kFloat:
        case PhysicalType::kDouble:
            return values.reals[i];
        case PhysicalType::kByteArray:
            return values.strings[i];
        default:
            return values.ints[i];
    }
}

class LeafAssembler {
  public:
    LeafAssembler(const Schema& schema, int leaf, const LeafData& data, const std::string& what)
        : schema_(schema), path_(schema.path_to(leaf)), data_(data), what_(what) {
        const SchemaNode& node = schema.nodes[static_cast<size_t>(schema.leaves[leaf])];
        max_def_ = node.def_level;
        counters_.resize(path_.size());
        what_leaf_ = what + ", column '" + schema.leaf_name(leaf) + "'";
    }

    // Inserts the entries of the next row into `row`.
    void next_row(json& row) {
        std::fill(counters_.begin(), counters_.end(), -1);
        do {
            insert(row);
            ++entry_;
        } while (entry_ < data_.entries && !data_.rep.empty() && data_.rep[entry_] != 0);
    }

  private:
    [[noreturn]] void inconsistent(const char* problem) const {
        fail("{}: entry {}: {}", what_leaf_, entry_, problem);
    }

    void insert(json& row) {
        const int d = data_.def.empty() ? max_def_ : data_.def[entry_];
        const int r = data_.rep.empty() ? 0 : data_.rep[entry_];
        json* slot = &row;
        for (size_t i = 0; i < path_.size(); ++i) {
            const SchemaNode& node = schema_.nodes[static_cast<size_t>(path_[i])];
            if (node.keyed) {
                if (slot->is_null()) *slot = json::object();
                if (!slot->is_object()) inconsistent("a group where the levels made a value");
                slot = &(*slot)[node.element.name];
            }
            const Repetition repetition = node.element.repetition;
            if (repetition == Repetition::kOptional && d < node.def_level) return;  // null
            if (repetition != Repetition::kRepeated) continue;
            if (d < node.def_level) {  // an empty list
                if (slot->is_null()) *slot = json::array();
                return;
            }
            if (slot->is_null()) *slot = json::array();
            if (!slot->is_array()) inconsistent("a list where the levels made a value");
            // r says which repeated node starts a new element; nodes above it continue their
            // current element, nodes below it start a new list.
            int& counter = counters_[i];
            if (node.rep_level < r) {
                if (counter < 0) inconsistent("a repetition level continues a list never begun");
            } else if (node.rep_level == r) {
                ++counter;
            } else {
                counter = 0;
            }
            const auto index = static_cast<size_t>(counter);
            if (index > slot->size()) inconsistent("the columns of a list disagree on its length");
            if (index == slot->size()) slot->push_back(nullptr);
            slot = &(*slot)[index];
        }
        if (value_ >= data_.values.size()) inconsistent("more defined entries than values");
        *slot = value_json(data_.values, value_++);
    }

    const Schema& schema_;
    std::vector<int> path_;
    const LeafData& data_;
    const std::string& what_;
    std::string what_leaf_;
    int max_def_ = 0;
    std::vector<int> counters_;
    size_t entry_ = 0, value_ = 0;
};

}  // namespace

size_t count_rows(const LeafData& data) {
    if (data.rep.empty()) return data.entries;
    size_t rows = 0;
    for (const uint16_t r : data.rep) rows += r == 0;
    return rows;
}

void assemble_field(const Schema& schema, int field, const std::vector<int>& leaves,
                    const std::vector<LeafData>& data, std::vector<nlohmann::json>& rows,
                    const std::string& what) {
    const std::string& name = schema.nodes[static_cast<size_t>(field)].element.name;
    for (size_t l = 0; l < leaves.size(); ++l) {
        LeafAssembler leaf(schema, leaves[l], data[l], what);
        const size_t n = count_rows(data[l]);
        check(n == rows.size(), "{}, column '{}': {} rows, the row group has {}", what,
              schema.leaf_name(leaves[l]), n, rows.size());
        for (json& row : rows) leaf.next_row(row);
    }
    // A field whose leaves all stopped above it (a null group) still appears, as null.
    for (json& row : rows) {
        if (!row.contains(name)) row[name] = nullptr;
    }
}

}  // namespace greenmoe::parquet

// The footer (magic, length, FileMetaData), its consistency checks, and column selection.
#include "greenmoe/io/parquet/parquet_reader.h"

#include <cstring>

#include "greenmoe/core/error.h"
#include "greenmoe/io/parquet/parquet_assemble.h"

namespace greenmoe::parquet {

namespace {

constexpr size_t kMagicSize = 4;

bool magic_at(const std::byte* p, const char* magic) {
    return std::memcmp(p, magic, kMagicSize) == 0;
}

}  // namespace

ParquetFile ParquetFile::open(const std::filesystem::path& path) {
    ParquetFile f;
    f.file_ = MappedFile::open(path);
    const std::string name = path.string();
    const size_t size = f.file_.size();
    const std::byte* data = f.file_.data();
    check(size >= 12, "{}: not a Parquet file: {} bytes, too short for its header and footer", name,
          size);
    check(!magic_at(data + size - 4, "PARE"),
          "{}: an encrypted Parquet file (footer magic PARE); not supported", name);
    check(magic_at(data, "PAR1") && magic_at(data + size - 4, "PAR1"),
          "{}: not a Parquet file: it must start and end with the magic bytes PAR1", name);
    uint32_t footer = 0;
    std::memcpy(&footer, data + size - 8, 4);
    check(footer <= size - 12, "{}: a footer of {} bytes in a file of {}: truncated or corrupt",
          name, footer, size);
    const auto* bytes = reinterpret_cast<const uint8_t*>(data);
    f.meta_ = parse_file_metadata(bytes + size - 8 - footer, footer, name);
    check(!f.meta_.encrypted, "{}: an encrypted Parquet file; not supported", name);
    f.schema_ = build_schema(f.meta_.schema, name + ": schema");
    check(!f.schema_.leaves.empty(), "{}: the schema has no columns", name);
    int64_t rows = 0;
    for (size_t g = 0; g < f.meta_.row_groups.size(); ++g) {
        const RowGroup& group = f.meta_.row_groups[g];
        check(group.columns.size() == f.schema_.leaves.size(),
              "{}: row group {} has {} columns, the schema {}", name, g, group.columns.size(),
              f.schema_.leaves.size());
        check(group.num_rows >= 0 && group.num_rows <= kMaxChunkValues,
              "{}: row group {} claims {} rows", name, g, group.num_rows);
        rows += group.num_rows;
    }
    check(rows == f.meta_.num_rows, "{}: the row groups hold {} rows, the footer says {}", name,
          rows, f.meta_.num_rows);
    return f;
}

uint64_t ParquetFile::row_group_end(size_t group) const {
    uint64_t end = 0;
    for (const ColumnChunk& c : meta_.row_groups[group].columns) {
        int64_t start = c.meta.data_page_offset;
        if (c.meta.dictionary_page_offset && *c.meta.dictionary_page_offset > 0) {
            start = std::min(start, *c.meta.dictionary_page_offset);
        }
        const int64_t size = c.meta.total_compressed_size;
        // Unchecked until the chunk is read: clamp rather than overflow on forged values.
        if (start < 0 || size < 0 || static_cast<uint64_t>(start) > file_.size()) continue;
        end = std::max(end, static_cast<uint64_t>(start) +
                                std::min(static_cast<uint64_t>(size), file_.size()));
    }
    return std::min<uint64_t>(end, file_.size());
}

std::vector<std::string> ParquetFile::field_names() const {
    std::vector<std::string> names;
    for (const int n : schema_.top_level) {
        names.push_back(schema_.nodes[static_cast<size_t>(n)].element.name);
    }
    return names;
}

std::string ParquetFile::column_what(size_t group, int leaf) const {
    return fmt::format("{}: row group {}, column '{}'", path().string(), group,
                       schema_.leaf_name(leaf));
}

LeafInfo ParquetFile::leaf_info(int leaf) const {
    const SchemaNode& node = schema_.nodes[static_cast<size_t>(schema_.leaves[leaf])];
    LeafInfo info;
    info.type = *node.element.type;
    info.max_def = node.def_level;
    info.max_rep = node.rep_level;
    return info;
}

void ParquetFile::read_leaf(size_t group, int leaf, LeafData& out) const {
    const std::string what = column_what(group, leaf);
    const LeafInfo info = leaf_info(leaf);
    check(info.type != PhysicalType::kInt96 && info.type != PhysicalType::kFixedLenByteArray,
          "{}: physical type {} is not supported (greenmoe reads BOOLEAN, INT32, INT64, FLOAT, "
          "DOUBLE and BYTE_ARRAY)",
          what, name_of(info.type));
    const ColumnChunk& chunk = meta_.row_groups[group].columns[static_cast<size_t>(leaf)];
    std::vector<std::string> expected;
    for (const int n : schema_.path_to(leaf)) {
        expected.push_back(schema_.nodes[static_cast<size_t>(n)].element.name);
    }
    check(chunk.meta.path_in_schema == expected,
          "{}: the column chunk's path does not match the schema", what);
    read_column_chunk(reinterpret_cast<const uint8_t*>(file_.data()), file_.size(), chunk, info,
                      out, what);
}

int ParquetFile::require_field(const std::string& field) const {
    const int n = schema_.find_field(field);
    if (n >= 0) return n;
    std::string names;
    for (const std::string& name : field_names()) {
        if (!names.empty()) names += ", ";
        names += name;
    }
    fail("{}: no column '{}'; the file has: {}", path().string(), field, names);
}

void ParquetFile::read_flat(size_t group, const std::string& field, FlatColumn& out) const {
    const int n = require_field(field);
    const SchemaNode& node = schema_.nodes[static_cast<size_t>(n)];
    check(node.leaf >= 0 && node.element.repetition != Repetition::kRepeated,
          "{}: column '{}' is nested (a list or a group); a plain column is expected here",
          path().string(), field);
    LeafData data;
    read_leaf(group, node.leaf, data);
    const auto rows = static_cast<size_t>(meta_.row_groups[group].num_rows);
    check(data.entries == rows, "{}: {} values, the row group has {} rows",
          column_what(group, node.leaf), data.entries, rows);
    out.type = data.values.type;
    out.rows = rows;
    out.present.clear();
    if (!data.def.empty()) {
        out.present.resize(rows);
        const auto max_def = static_cast<uint16_t>(node.def_level);
        for (size_t i = 0; i < rows; ++i) out.present[i] = data.def[i] == max_def;
    }
    out.values = std::move(data.values);
}

void ParquetFile::read_rows(size_t group, const std::vector<std::string>& fields,
                            std::vector<nlohmann::json>& rows) const {
    std::vector<int> nodes;
    if (fields.empty()) {
        nodes = schema_.top_level;
    } else {
        for (const std::string& f : fields) nodes.push_back(require_field(f));
    }
    const auto n = static_cast<size_t>(meta_.row_groups[group].num_rows);
    // Every column is read and its row count checked before the rows are made, so a forged
    // row count allocates nothing.
    std::vector<std::vector<int>> leaves(nodes.size());
    std::vector<std::vector<LeafData>> data(nodes.size());
    for (size_t f = 0; f < nodes.size(); ++f) {
        leaves[f] = schema_.leaves_under(nodes[f]);
        data[f].resize(leaves[f].size());
        for (size_t i = 0; i < leaves[f].size(); ++i) {
            read_leaf(group, leaves[f][i], data[f][i]);
            const size_t rows_read = count_rows(data[f][i]);
            check(rows_read == n, "{}: {} rows, the row group has {}",
                  column_what(group, leaves[f][i]), rows_read, n);
        }
    }
    rows.assign(n, nlohmann::json::object());
    const std::string what = fmt::format("{}: row group {}", path().string(), group);
    for (size_t f = 0; f < nodes.size(); ++f) {
        assemble_field(schema_, nodes[f], leaves[f], data[f], rows, what);
        data[f].clear();
    }
}

std::vector<nlohmann::json> read_parquet_rows(const std::filesystem::path& path,
                                              const std::vector<std::string>& fields) {
    const ParquetFile file = ParquetFile::open(path);
    std::vector<nlohmann::json> all, rows;
    for (size_t g = 0; g < file.num_row_groups(); ++g) {
        file.read_rows(g, fields, rows);
        for (auto& row : rows) all.push_back(std::move(row));
    }
    return all;
}

}  // namespace greenmoe::parquet

// libFuzzer target: the Parquet footer's Thrift metadata and a page header parsed from the input
// buffer itself (so AddressSanitizer sees a read past its end), then the whole file read as
// rows and as flat columns (see docs/fuzzing.md).
#include "fuzz_file.h"
#include "greenmoe/core/error.h"
#include "greenmoe/io/parquet/parquet_metadata.h"
#include "greenmoe/io/parquet/parquet_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace greenmoe;
    try {
        parquet::parse_file_metadata(data, size, "buffer");
    } catch (const Error&) {
    }
    try {
        const parquet::PageHeader h = parquet::parse_page_header(data, size, "buffer");
        fuzz::require(h.header_size <= size);
    } catch (const Error&) {
    }
    const std::filesystem::path path = fuzz::write_input(data, size, "data.parquet");
    try {
        const auto file = parquet::ParquetFile::open(path);
        std::vector<nlohmann::json> rows;
        parquet::FlatColumn column;
        for (size_t g = 0; g < file.num_row_groups(); ++g) {
            file.read_rows(g, {}, rows);
            fuzz::require(rows.size() == static_cast<size_t>(file.row_group_rows(g)));
            for (const int n : file.schema().top_level) {
                const auto& node = file.schema().nodes[static_cast<size_t>(n)];
                if (node.leaf < 0 || node.element.repetition == parquet::Repetition::kRepeated) {
                    continue;
                }
                file.read_flat(g, node.element.name, column);
                size_t present = 0;
                for (size_t i = 0; i < column.rows; ++i) present += column.has_value(i);
                fuzz::require(present == column.values.size());
            }
        }
    } catch (const Error&) {
    }
    return 0;
}

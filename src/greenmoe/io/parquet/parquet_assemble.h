// Record assembly: the levels and values of a field's leaf columns turned back into one
// JSON-like value per row (Dremel's algorithm, as parquet-format describes the levels).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/io/parquet/parquet_column.h"
#include "greenmoe/io/parquet/parquet_schema.h"

namespace greenmoe::parquet {

// The number of rows leaf column data holds (entries that start a row).
size_t count_rows(const LeafData& data);

// Sets rows[r][name of `field`] for every row from the field's leaf columns `leaves` (column
// indexes) and their decoded `data` (same order). rows must hold num_rows objects. Throws
// Error "<what>: ..." when the levels are inconsistent with the schema or each other.
void assemble_field(const Schema& schema, int field, const std::vector<int>& leaves,
                    const std::vector<LeafData>& data, std::vector<nlohmann::json>& rows,
                    const std::string& what);

}  // namespace greenmoe::parquet

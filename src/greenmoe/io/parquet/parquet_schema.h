// A Parquet file's schema as a tree: its leaf columns with their definition and repetition
// levels, and how nested groups map to JSON objects and arrays.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "greenmoe/io/parquet/parquet_metadata.h"

namespace greenmoe::parquet {

struct SchemaNode {
    SchemaElement element;
    int parent = -1;
    std::vector<int> children;
    int def_level = 0;  // definition level once this node is present
    int rep_level = 0;  // repeated nodes on the path from the root, this one included
    int leaf = -1;      // column index of a leaf, -1 for groups
    // JSON shape: a child of a plain group is a key of its object; a LIST / MAP group and
    // the repeated group inside a standard 3-level list pass their child's value through.
    bool keyed = false;
    bool pass_through = false;
};

struct Schema {
    std::vector<SchemaNode> nodes;  // nodes[0] is the root
    std::vector<int> leaves;        // leaf column i is nodes[leaves[i]]
    std::vector<int> top_level;     // the root's children

    // The node of a top-level field, or -1.
    int find_field(const std::string& name) const;
    // Column indexes of the leaves under node `n`, in column order.
    std::vector<int> leaves_under(int n) const;
    // Node indexes from a top-level field down to leaf column `leaf`.
    std::vector<int> path_to(int leaf) const;
    // "a.list.element" for leaf column `leaf`.
    std::string leaf_name(int leaf) const;
};

// Builds the tree from the flattened, depth-first schema list; `what` prefixes errors.
Schema build_schema(const std::vector<SchemaElement>& elements, const std::string& what);

}  // namespace greenmoe::parquet

// Schema tree, levels and the LIST / MAP conventions of parquet-format's LogicalTypes.md.
#include "greenmoe/io/parquet/parquet_schema.h"

#include <algorithm>

#include "greenmoe/core/error.h"

namespace greenmoe::parquet {

namespace {

constexpr int kMaxDepth = 32;

bool is_list_or_map(const SchemaElement& e) {
    return e.logical_list || e.logical_map ||
           (e.converted_type &&
            (*e.converted_type == kConvertedList || *e.converted_type == kConvertedMap ||
             *e.converted_type == kConvertedMapKeyValue));
}

class Builder {
  public:
    Builder(const std::vector<SchemaElement>& elements, const std::string& what)
        : elements_(elements), what_(what) {}

    Schema build() {
        check(!elements_.empty(), "{}: the schema is empty", what_);
        add(-1, 0);
        check(next_ == elements_.size(), "{}: the schema has {} elements, its tree uses {}", what_,
              elements_.size(), next_);
        return std::move(schema_);
    }

  private:
    int add(int parent, int depth) {
        check(depth <= kMaxDepth, "{}: the schema is nested more than {} deep", what_, kMaxDepth);
        check(next_ < elements_.size(), "{}: the schema's child counts exceed its elements", what_);
        const int index = static_cast<int>(schema_.nodes.size());
        SchemaNode node;
        node.element = elements_[next_++];
        node.parent = parent;
        if (parent >= 0) {
            const SchemaNode& p = schema_.nodes[static_cast<size_t>(parent)];
            node.def_level = p.def_level;
            node.rep_level = p.rep_level;
            if (node.element.repetition != Repetition::kRequired) ++node.def_level;
            if (node.element.repetition == Repetition::kRepeated) ++node.rep_level;
            node.keyed = parent == 0 || !(is_list_or_map(p.element) || p.pass_through);
        }
        const int32_t children = node.element.num_children;
        check(children >= 0 && static_cast<size_t>(children) <= elements_.size() - next_,
              "{}: schema element '{}' claims {} children", what_, node.element.name, children);
        const bool is_group = parent < 0 || children > 0;
        check(is_group || node.element.type.has_value(),
              "{}: schema element '{}' has neither a type nor children", what_, node.element.name);
        if (parent >= 0 && is_list_or_map(schema_.nodes[static_cast<size_t>(parent)].element)) {
            // The standard 3-level list: `repeated group list { element }` passes its one child
            // through; the legacy names "array" and "<parent>_tuple" mark 2-level lists whose
            // repeated group is itself the element (LogicalTypes.md, backward compatibility).
            const std::string& parent_name =
                schema_.nodes[static_cast<size_t>(parent)].element.name;
            node.pass_through = node.element.repetition == Repetition::kRepeated && children == 1 &&
                                node.element.name != "array" &&
                                node.element.name != parent_name + "_tuple";
        }
        schema_.nodes.push_back(std::move(node));
        if (!is_group) {
            schema_.nodes[static_cast<size_t>(index)].leaf =
                static_cast<int>(schema_.leaves.size());
            schema_.leaves.push_back(index);
            return index;
        }
        for (int32_t i = 0; i < children; ++i) {
            const int child = add(index, depth + 1);
            schema_.nodes[static_cast<size_t>(index)].children.push_back(child);
            if (parent < 0) schema_.top_level.push_back(child);
        }
        return index;
    }

    const std::vector<SchemaElement>& elements_;
    const std::string& what_;
    size_t next_ = 0;
    Schema schema_;
};

}  // namespace

int Schema::find_field(const std::string& name) const {
    for (const int n : top_level) {
        if (nodes[static_cast<size_t>(n)].element.name == name) return n;
    }
    return -1;
}

std::vector<int> Schema::leaves_under(int n) const {
    std::vector<int> out;
    std::vector<int> stack = {n};
    while (!stack.empty()) {
        const int m = stack.back();
        stack.pop_back();
        const SchemaNode& node = nodes[static_cast<size_t>(m)];
        if (node.leaf >= 0) out.push_back(node.leaf);
        for (auto it = node.children.rbegin(); it != node.children.rend(); ++it) {
            stack.push_back(*it);
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<int> Schema::path_to(int leaf) const {
    std::vector<int> path;
    for (int n = leaves[static_cast<size_t>(leaf)]; n > 0;
         n = nodes[static_cast<size_t>(n)].parent) {
        path.push_back(n);
    }
    std::reverse(path.begin(), path.end());
    return path;
}

std::string Schema::leaf_name(int leaf) const {
    std::string name;
    for (const int n : path_to(leaf)) {
        if (!name.empty()) name += '.';
        name += nodes[static_cast<size_t>(n)].element.name;
    }
    return name;
}

Schema build_schema(const std::vector<SchemaElement>& elements, const std::string& what) {
    return Builder(elements, what).build();
}

}  // namespace greenmoe::parquet

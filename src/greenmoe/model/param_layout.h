// A table of named parameter tensors laid out in one flat float block (llm.c style), so
// parameters, gradients and optimizer moments share one indexing and one allocation each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace greenmoe {

struct ParamSpec {
    std::string name;  // nanoGPT state_dict name, e.g. "transformer.h.0.attn.c_attn.weight"
    std::vector<int64_t> shape;
    size_t offset = 0;  // in floats from the start of the block
    size_t numel = 0;
    bool weight_decay = false;  // AdamW decays matrices and embeddings (dim ≥ 2) only
};

class ParamLayout {
  public:
    // Appends a tensor; offsets are rounded up to 16 floats (64 bytes) for aligned loads.
    size_t add(const std::string& name, std::vector<int64_t> shape);

    const std::vector<ParamSpec>& specs() const { return specs_; }
    const ParamSpec* find(const std::string& name) const;
    const ParamSpec& get(const std::string& name) const;  // throws Error if absent
    size_t total_floats() const { return total_; }
    size_t num_parameters() const;  // Σ numel, without alignment padding

  private:
    std::vector<ParamSpec> specs_;
    std::unordered_map<std::string, size_t> index_;
    size_t total_ = 0;
};

}  // namespace greenmoe

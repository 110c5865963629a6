// ParamLayout (see param_layout.h).
#include "greenmoe/model/param_layout.h"

#include "greenmoe/core/error.h"

namespace greenmoe {

size_t ParamLayout::add(const std::string& name, std::vector<int64_t> shape) {
    check(!index_.count(name), "parameter '{}' declared twice", name);
    ParamSpec spec;
    spec.name = name;
    spec.numel = 1;
    for (int64_t d : shape) spec.numel *= static_cast<size_t>(d);
    // AdamW decays matrices and embeddings only; per-expert biases and condmlp's per-path
    // bias pairs are 2-D tensors of biases and stay undecayed like every other bias.
    spec.weight_decay = shape.size() >= 2 && !name.ends_with(".bias") && !name.ends_with(".b_fc") &&
                        !name.ends_with(".b_proj");
    spec.shape = std::move(shape);
    spec.offset = (total_ + 15) / 16 * 16;
    total_ = spec.offset + spec.numel;
    index_[name] = specs_.size();
    specs_.push_back(std::move(spec));
    return specs_.back().offset;
}

const ParamSpec* ParamLayout::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &specs_[it->second];
}

const ParamSpec& ParamLayout::get(const std::string& name) const {
    const ParamSpec* spec = find(name);
    check(spec != nullptr, "model has no parameter named '{}'", name);
    return *spec;
}

size_t ParamLayout::num_parameters() const {
    size_t n = 0;
    for (const auto& s : specs_) n += s.numel;
    return n;
}

}  // namespace greenmoe

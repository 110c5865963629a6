// A tensor shape as error messages print it: "[2, 3, 4]".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace greenmoe {

inline std::string shape_text(const std::vector<int64_t>& shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) text += ", ";
        text += std::to_string(shape[i]);
    }
    return text + "]";
}

}  // namespace greenmoe

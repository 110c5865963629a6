// Residual connections: elementwise add, out of place and in place.
#pragma once

#include <cstddef>

namespace greenmoe::nn {

// out[i] = a[i] + b[i]; out may alias a or b.
void residual_forward(float* out, const float* a, const float* b, size_t n);

// dst[i] += src[i] (the residual's backward: the gradient flows unchanged to both inputs).
void add_inplace(float* dst, const float* src, size_t n);

}  // namespace greenmoe::nn

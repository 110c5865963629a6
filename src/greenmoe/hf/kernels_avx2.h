// The AVX2 + FMA + F16C path of the weight-row kernels (see kernels.h); call only where
// kernel_path_supported(KernelPath::Avx2).
#pragma once

#include <cstdint>

#include "greenmoe/hf/hf_weights.h"

namespace greenmoe::hf {

void convert_rows_avx2(const Mat& w, int64_t r0, int64_t m, float* out);
// n ≤ kDotMaxInputs.
void dot_rows_avx2(const float* x, int64_t n, const Mat& w, int64_t r0, int64_t r1, float* y,
                   int64_t ldy);

}  // namespace greenmoe::hf

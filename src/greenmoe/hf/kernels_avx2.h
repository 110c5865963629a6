// The AVX2 + FMA + F16C path of the weight-row kernels (see kernels.h); call only where
// kernel_path_supported(KernelPath::Avx2).
#pragma once

#include <cstdint>

#include "greenmoe/hf/hf_weights.h"

namespace greenmoe::hf {

void convert_rows_avx2(const Mat& w, int64_t r0, int64_t m, float* out);
// y[i·ldy + r] = x[i, :] · panel[r, :] for every input i < n and panel row r (an F32 panel of
// at most 4 rows, converted weight rows kept in L1 while all inputs stream past).
void dot_panel_avx2(const float* x, int64_t n, const Mat& panel, float* y, int64_t ldy);
// n ≤ kDotMaxInputs.
void dot_rows_avx2(const float* x, int64_t n, const Mat& w, int64_t r0, int64_t r1, float* y,
                   int64_t ldy);

}  // namespace greenmoe::hf

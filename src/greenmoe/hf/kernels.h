// Row kernels on weight matrices in their stored dtype (BF16, F16, F32): conversion of row
// blocks to fp32 and products that read each weight row once, with fp32 accumulation, on the
// widest vector path the CPU offers (chosen at run time, so one binary runs everywhere).
#pragma once

#include <cstdint>

#include "greenmoe/hf/hf_weights.h"

namespace greenmoe::hf {

enum class KernelPath {
    Portable,  // plain C++, any CPU
    Avx2,      // AVX2 + FMA + F16C: 8 weights converted in registers per step
};

// The fastest path this CPU supports (decided once).
KernelPath best_kernel_path();
const char* kernel_path_name(KernelPath path);
bool kernel_path_supported(KernelPath path);

// out[m, w.cols] ← rows r0 … r0+m−1 of w as fp32 (exact).
void convert_rows(const Mat& w, int64_t r0, int64_t m, float* out,
                  KernelPath path = best_kernel_path());

// Inputs per call of dot_rows; more rows are done in groups of this many.
constexpr int64_t kDotMaxInputs = 8;

// y[i·ldy + r] = x[i, :] · w[r, :] for i < n and r0 ≤ r < r1, each weight row read once for
// all n inputs (x is [n, w.cols], row-major). Single-threaded; callers split the rows.
void dot_rows(const float* x, int64_t n, const Mat& w, int64_t r0, int64_t r1, float* y,
              int64_t ldy, KernelPath path = best_kernel_path());

// dot_rows over every row of a small panel (up to 4 rows, typically weight rows converted to
// fp32 and kept in L1) for any number of inputs: on AVX2, 3 inputs × 4 rows per pass so that
// each panel vector loaded serves 3 inputs and each input vector 4 rows.
void dot_panel(const float* x, int64_t n, const Mat& panel, float* y, int64_t ldy,
               KernelPath path = best_kernel_path());

}  // namespace greenmoe::hf

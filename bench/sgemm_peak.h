// This machine's fp32 matrix-multiply peak, measured in the run: the bound the benchmarks'
// model-FLOPs utilisation is taken against.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace bench {

// Best of a few 2048³ sgemm products on all threads, in GFLOP/s.
inline double sgemm_gflops() {
    using Clock = std::chrono::steady_clock;
    const int n = 2048;
    std::vector<float> a(size_t(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size());
    double best = 0.0;
    for (int rep = 0; rep < 4; ++rep) {
        const auto start = Clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                    n, 0.0f, c.data(), n);
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        best = std::max(best, 2.0 * n * n * n / seconds / 1e9);
    }
    return best;
}

}  // namespace bench

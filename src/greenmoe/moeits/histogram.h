// numpy-compatible 'auto' histogram edges, bin assignment, percentiles and pairwise sums.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace greenmoe::moeits {

// numpy 1.24's np.histogram_bin_edges(x, bins='auto') as a uniform-bin description:
// edges = np.linspace(first, last, n_bins + 1). Edges are computed on demand with
// linspace's own arithmetic (i·step + first, the last one exactly `last`), so a matrix
// with millions of bins never needs an edge array.
struct BinEdges {
    double first = 0.0;
    double last = 1.0;
    int64_t n_bins = 1;
    double step = 1.0;   // (last - first) / n_bins, as linspace computes it
    double norm = 1.0;   // n_bins / (last - first), as np.histogram computes it
    double width = 0.0;  // the estimator's bin width (0 when it fell back to one bin)
    double iqr = 0.0;    // 75th − 25th percentile of the data (linear interpolation)

    double edge(int64_t i) const;
    // np.histogram's bin for x in [first, last]: the estimate (x - first)·norm truncated,
    // then one correction step against the edges; the last bin is closed.
    int64_t bin_of(double x) const;
};

// Where numpy's 'linear' percentile q (0..100) of n sorted values lies: the result is
// numpy_lerp(sorted[lo], sorted[hi], gamma).
struct PercentilePosition {
    size_t lo = 0;
    size_t hi = 0;
    double gamma = 0.0;
};
PercentilePosition percentile_position(size_t n, double q);

// numpy's _lerp: a + (b − a)·t, or b − (b − a)·(1 − t) when t ≥ 0.5.
double numpy_lerp(double a, double b, double t);

// The sum np.add.reduce computes for a contiguous float64 array: from 0, chunks of 8192
// (the iterator's buffer) each summed pairwise (blocks of 8 up to 128 elements).
// np.mean is this divided by n.
double numpy_pairwise_sum(const double* values, size_t n);

// Edges from the data's summary: min, max, size and IQR (p75 − p25). Throws Error when
// min/max are not finite or the bin count would not fit in int32.
BinEdges auto_bin_edges_from_stats(double min, double max, size_t n, double iqr);

// np.histogram_bin_edges(values, bins='auto') for n > 0 finite values (sorts a copy).
BinEdges auto_bin_edges(const double* values, size_t n);

// Monotone map from float bit patterns to unsigned keys: key order is numeric order (with
// -0 just below +0; they compare equal, so no percentile or bin ever tells them apart).
inline uint32_t float_order_key(float f) {
    const auto u = std::bit_cast<uint32_t>(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
inline float order_key_float(uint32_t key) {
    return std::bit_cast<float>((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// The order key of the bfloat16 value whose key has high half `bucket`: a non-negative
// value keeps its (zero) low bits, a negative one has them inverted.
inline uint32_t bf16_bucket_key(uint32_t bucket) {
    return (bucket & 0x8000u) ? (bucket << 16) : ((bucket << 16) | 0xffffu);
}

// Below this many values sorting a copy is cheaper than 65536-bucket passes.
constexpr size_t kRadixMinSize = size_t{1} << 16;

// First pass of the float path (parallel): counts of the upper 16 bits of every value's
// order key, the min/max keys, and whether every value is a bfloat16 number (all low 16
// bits 0) — then each bucket holds one distinct value. Throws Error on NaN or infinity.
struct HighHistogram {
    static constexpr size_t kBuckets = size_t{1} << 16;
    std::vector<uint32_t> counts;
    uint32_t min_key = 0;
    uint32_t max_key = 0;
    bool bf16_exact = false;
};
HighHistogram high_histogram(const float* values, size_t n);

// The same edges for float data without sorting: min, max and the four order statistics of
// the IQR come from a radix select on the float bit patterns (the high-half histogram, then
// one pass over the low halves unless bf16_exact), exact because every float is exactly a
// double. The second overload reuses a first pass already made.
BinEdges auto_bin_edges(const float* values, size_t n);
BinEdges auto_bin_edges(const float* values, size_t n, const HighHistogram& high);

// np.histogram's bin of every value (parallel). Bins fit in uint32 (n_bins <= 2^31 - 1).
void assign_bins(const BinEdges& edges, const float* values, size_t n, uint32_t* out);
void assign_bins(const BinEdges& edges, const double* values, size_t n, uint32_t* out);
// Same, for n_bins <= 65535.
void assign_bins(const BinEdges& edges, const float* values, size_t n, uint16_t* out);
void assign_bins(const BinEdges& edges, const double* values, size_t n, uint16_t* out);

}  // namespace greenmoe::moeits

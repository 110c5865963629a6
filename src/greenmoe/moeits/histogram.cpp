// numpy-compatible 'auto' histogram edges, bin assignment, percentiles and pairwise sums.
#include "greenmoe/moeits/histogram.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>

#include "greenmoe/core/error.h"

// numpy evaluates a*b + c as two rounded operations; -march=native would otherwise let
// GCC fuse them into one FMA and move edges, percentiles and bin counts by an ulp, which
// is enough to change a bin index on a tie or a ceil() in the bin count.
#pragma GCC optimize("fp-contract=off")

namespace greenmoe::moeits {

namespace {

constexpr size_t kParallelMinSize = 1 << 15;

// Inside another parallel region (layer_similarity bins several matrices at once) a nested
// region would run on one thread anyway; sizing per-thread buffers for more is waste.
int available_threads() {
    return omp_in_parallel() ? 1 : omp_get_max_threads();
}

double percentile_of_sorted(const std::vector<double>& sorted, double q) {
    const PercentilePosition p = percentile_position(sorted.size(), q);
    return numpy_lerp(sorted[p.lo], sorted[p.hi], p.gamma);
}

// The k-th smallest keys (k in `ranks`) given the first pass: the bucket of each rank from
// the high-half histogram, then (unless every value is a bfloat16 number, whose low half is
// 0) a second pass histograms the low halves inside those few buckets.
std::array<uint32_t, 4> rank_keys(const float* values, size_t n, const HighHistogram& high,
                                  const std::array<size_t, 4>& ranks) {
    constexpr size_t kBuckets = HighHistogram::kBuckets;
    std::array<uint32_t, 4> bucket_of{};
    std::array<size_t, 4> rank_in{};
    for (size_t r = 0; r < ranks.size(); ++r) {
        size_t below = 0;
        size_t b = 0;
        while (below + high.counts[b] <= ranks[r]) below += high.counts[b++];
        bucket_of[r] = static_cast<uint32_t>(b);
        rank_in[r] = ranks[r] - below;
    }
    std::array<uint32_t, 4> keys{};
    if (high.bf16_exact) {
        for (size_t r = 0; r < ranks.size(); ++r) keys[r] = bf16_bucket_key(bucket_of[r]);
        return keys;
    }
    std::array<uint32_t, 4> targets{};
    int n_targets = 0;
    for (uint32_t b : bucket_of) {
        if (std::find(targets.begin(), targets.begin() + n_targets, b) ==
            targets.begin() + n_targets) {
            targets[n_targets++] = b;
        }
    }
    const int n_threads = n >= kParallelMinSize ? available_threads() : 1;
    const size_t stride = kBuckets * static_cast<size_t>(n_targets);
    std::vector<uint32_t> low(stride * static_cast<size_t>(n_threads), 0);
    const auto sn = static_cast<int64_t>(n);
#pragma omp parallel num_threads(n_threads)
    {
        uint32_t* h = low.data() + static_cast<size_t>(omp_get_thread_num()) * stride;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < sn; ++i) {
            const uint32_t key = float_order_key(values[i]);
            const uint32_t b = key >> 16;
            for (int k = 0; k < n_targets; ++k) {
                if (b == targets[k]) {
                    ++h[static_cast<size_t>(k) * kBuckets + (key & 0xffffu)];
                    break;
                }
            }
        }
    }
    for (int t = 1; t < n_threads; ++t) {
        const uint32_t* h = low.data() + static_cast<size_t>(t) * stride;
        for (size_t j = 0; j < stride; ++j) low[j] += h[j];
    }
    for (size_t r = 0; r < ranks.size(); ++r) {
        const auto k = static_cast<size_t>(
            std::find(targets.begin(), targets.begin() + n_targets, bucket_of[r]) -
            targets.begin());
        const uint32_t* h = low.data() + k * kBuckets;
        size_t below = 0;
        size_t j = 0;
        while (below + h[j] <= rank_in[r]) below += h[j++];
        keys[r] = (bucket_of[r] << 16) | static_cast<uint32_t>(j);
    }
    return keys;
}

template <typename T, typename Index>
void assign_bins_impl(const BinEdges& edges, const T* values, size_t n, Index* out) {
    const auto sn = static_cast<int64_t>(n);
    const int n_threads = n >= kParallelMinSize ? available_threads() : 1;
    if (edges.step == 0.0 || edges.n_bins >= std::numeric_limits<int32_t>::max()) {
#pragma omp parallel for schedule(static) num_threads(n_threads)
        for (int64_t i = 0; i < sn; ++i) {
            out[i] = static_cast<Index>(edges.bin_of(static_cast<double>(values[i])));
        }
        return;
    }
    // bin_of without branches, in 32-bit indices, so that the loop vectorizes: the estimate,
    // then numpy's one-step corrections against the two neighbouring edges (i·step + first,
    // the last one exactly `last`). A decrement and an increment exclude each other since
    // x < edge(k) ≤ edge(k+1).
    const double first = edges.first;
    const double last = edges.last;
    const double norm = edges.norm;
    const double step = edges.step;
    const auto n_bins = static_cast<int32_t>(edges.n_bins);
    const int32_t top = n_bins - 1;
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (int64_t i = 0; i < sn; ++i) {
        const auto x = static_cast<double>(values[i]);
        auto k = static_cast<int32_t>((x - first) * norm);
        k = k > top ? top : k;
        const double lo = static_cast<double>(k) * step + first;
        const double hi = k == top ? last : static_cast<double>(k + 1) * step + first;
        const int32_t dec = x < lo ? 1 : 0;
        const int32_t inc = (dec == 0 && k != top && x >= hi) ? 1 : 0;
        out[i] = static_cast<Index>(k - dec + inc);
    }
}

}  // namespace

double BinEdges::edge(int64_t i) const {
    if (i >= n_bins) return last;
    if (step == 0.0) {
        // linspace's path for a denormal step: scale by the count first.
        return static_cast<double>(i) / static_cast<double>(n_bins) * (last - first) + first;
    }
    return static_cast<double>(i) * step + first;
}

int64_t BinEdges::bin_of(double x) const {
    auto index = static_cast<int64_t>((x - first) * norm);
    if (index >= n_bins) index = n_bins - 1;
    if (x < edge(index)) {
        --index;
    } else if (index != n_bins - 1 && x >= edge(index + 1)) {
        ++index;
    }
    return index;
}

PercentilePosition percentile_position(size_t n, double q) {
    PercentilePosition p;
    if (n == 0) return p;
    const double virtual_index = static_cast<double>(n - 1) * (q / 100.0);
    if (virtual_index >= static_cast<double>(n - 1)) {
        p.lo = p.hi = n - 1;
    } else if (virtual_index < 0.0) {
        p.lo = p.hi = 0;
    } else {
        const double below = std::floor(virtual_index);
        p.lo = static_cast<size_t>(below);
        p.hi = p.lo + 1;
        p.gamma = virtual_index - below;
    }
    return p;
}

double numpy_lerp(double a, double b, double t) {
    const double diff = b - a;
    if (t >= 0.5) return b - diff * (1.0 - t);
    return a + diff * t;
}

namespace {
double pairwise(const double* a, size_t n) {
    if (n < 8) {
        double res = 0.0;
        for (size_t i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= 128) {
        std::array<double, 8> r{};
        for (size_t j = 0; j < 8; ++j) r[j] = a[j];
        size_t i = 8;
        for (; i < n - (n % 8); i += 8) {
            for (size_t j = 0; j < 8; ++j) r[j] += a[i + j];
        }
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(a, n2) + pairwise(a + n2, n - n2);
}
}  // namespace

double numpy_pairwise_sum(const double* values, size_t n) {
    // The reduction starts from the identity 0 and feeds the inner loop one iterator
    // buffer (8192 elements) at a time, each summed pairwise.
    constexpr size_t kBufferSize = 8192;
    double res = 0.0;
    for (size_t i = 0; i < n; i += kBufferSize)
        res += pairwise(values + i, std::min(kBufferSize, n - i));
    return res;
}

BinEdges auto_bin_edges_from_stats(double min, double max, size_t n, double iqr) {
    check(std::isfinite(min) && std::isfinite(max),
          "histogram range [{}, {}] is not finite (NaN or infinite weights)", min, max);
    check(n > 0, "histogram of an empty matrix");
    BinEdges e;
    e.iqr = iqr;
    e.first = min;
    e.last = max;
    if (e.first == e.last) {
        e.first -= 0.5;
        e.last += 0.5;
    }
    // _hist_bin_auto: the narrower of Freedman–Diaconis and Sturges, Sturges alone when
    // the IQR is 0. Python's min(fd, sturges) keeps fd unless sturges is strictly smaller.
    const double dn = static_cast<double>(n);
    const double fd = 2.0 * iqr * std::pow(dn, -1.0 / 3.0);
    const double sturges = (max - min) / (std::log2(dn) + 1.0);
    e.width = fd != 0.0 ? (sturges < fd ? sturges : fd) : sturges;
    if (e.width != 0.0) {
        const double count = std::ceil((e.last - e.first) / e.width);
        check(count <= static_cast<double>(std::numeric_limits<int32_t>::max()),
              "histogram of {} values would need {} bins (range [{}, {}], IQR {}): heavy "
              "outliers make numpy's 'auto' rule unusable here",
              n, count, min, max, iqr);
        e.n_bins = static_cast<int64_t>(count);
    } else {
        e.n_bins = 1;
    }
    const double delta = e.last - e.first;
    e.step = delta / static_cast<double>(e.n_bins);
    e.norm = static_cast<double>(e.n_bins) / delta;
    return e;
}

BinEdges auto_bin_edges(const double* values, size_t n) {
    check(n > 0, "histogram of an empty matrix");
    std::vector<double> sorted(values, values + n);
    for (double v : sorted) {
        check(std::isfinite(v), "histogram input holds a NaN or infinite value");
    }
    std::sort(sorted.begin(), sorted.end());
    const double iqr = percentile_of_sorted(sorted, 75.0) - percentile_of_sorted(sorted, 25.0);
    return auto_bin_edges_from_stats(sorted.front(), sorted.back(), n, iqr);
}

HighHistogram high_histogram(const float* values, size_t n) {
    constexpr size_t kBuckets = HighHistogram::kBuckets;
    const int n_threads = n >= kParallelMinSize ? available_threads() : 1;
    std::vector<uint32_t> local(kBuckets * static_cast<size_t>(n_threads - 1), 0);
    std::vector<uint32_t> min_keys(static_cast<size_t>(n_threads), ~0u);
    std::vector<uint32_t> max_keys(static_cast<size_t>(n_threads), 0);
    std::vector<uint32_t> low_bits(static_cast<size_t>(n_threads), 0);
    std::vector<size_t> bad(static_cast<size_t>(n_threads), 0);
    HighHistogram h;
    h.counts.assign(kBuckets, 0);
    const auto sn = static_cast<int64_t>(n);
#pragma omp parallel num_threads(n_threads)
    {
        const int t = omp_get_thread_num();
        uint32_t* c =
            t == 0 ? h.counts.data() : local.data() + static_cast<size_t>(t - 1) * kBuckets;
        uint32_t lo = ~0u;
        uint32_t hi = 0;
        uint32_t low = 0;
        size_t non_finite = 0;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < sn; ++i) {
            const auto u = std::bit_cast<uint32_t>(values[i]);
            non_finite += (u & 0x7f800000u) == 0x7f800000u;
            low |= u;
            const uint32_t key = float_order_key(values[i]);
            lo = std::min(lo, key);
            hi = std::max(hi, key);
            ++c[key >> 16];
        }
        min_keys[static_cast<size_t>(t)] = lo;
        max_keys[static_cast<size_t>(t)] = hi;
        low_bits[static_cast<size_t>(t)] = low & 0xffffu;
        bad[static_cast<size_t>(t)] = non_finite;
    }
    size_t non_finite = 0;
    for (size_t b : bad) non_finite += b;
    check(non_finite == 0, "histogram input holds {} NaN or infinite values of {}", non_finite, n);
    for (int t = 1; t < n_threads; ++t) {
        const uint32_t* c = local.data() + static_cast<size_t>(t - 1) * kBuckets;
        for (size_t b = 0; b < kBuckets; ++b) h.counts[b] += c[b];
    }
    h.min_key = *std::min_element(min_keys.begin(), min_keys.end());
    h.max_key = *std::max_element(max_keys.begin(), max_keys.end());
    uint32_t low = 0;
    for (uint32_t l : low_bits) low |= l;
    h.bf16_exact = low == 0;
    return h;
}

BinEdges auto_bin_edges(const float* values, size_t n, const HighHistogram& high) {
    const PercentilePosition p25 = percentile_position(n, 25.0);
    const PercentilePosition p75 = percentile_position(n, 75.0);
    const std::array<uint32_t, 4> keys =
        rank_keys(values, n, high, {p25.lo, p25.hi, p75.lo, p75.hi});
    const auto value = [&](int r) { return static_cast<double>(order_key_float(keys[r])); };
    const double q25 = numpy_lerp(value(0), value(1), p25.gamma);
    const double q75 = numpy_lerp(value(2), value(3), p75.gamma);
    return auto_bin_edges_from_stats(order_key_float(high.min_key), order_key_float(high.max_key),
                                     n, q75 - q25);
}

BinEdges auto_bin_edges(const float* values, size_t n) {
    check(n > 0, "histogram of an empty matrix");
    if (n < kRadixMinSize) {
        std::vector<double> copy(values, values + n);
        return auto_bin_edges(copy.data(), n);
    }
    return auto_bin_edges(values, n, high_histogram(values, n));
}

void assign_bins(const BinEdges& edges, const float* values, size_t n, uint32_t* out) {
    assign_bins_impl(edges, values, n, out);
}
void assign_bins(const BinEdges& edges, const double* values, size_t n, uint32_t* out) {
    assign_bins_impl(edges, values, n, out);
}
void assign_bins(const BinEdges& edges, const float* values, size_t n, uint16_t* out) {
    assign_bins_impl(edges, values, n, out);
}
void assign_bins(const BinEdges& edges, const double* values, size_t n, uint16_t* out) {
    assign_bins_impl(edges, values, n, out);
}

}  // namespace greenmoe::moeits

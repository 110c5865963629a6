// NMI of two weight matrices and the per-layer expert similarity matrix (MoEITS spec §1–2).
#include "greenmoe/moeits/nmi.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <utility>

#include "greenmoe/core/error.h"

// Keeps Σ w_k·NMI_k as separately rounded products and sums, as the fixture script does.
#pragma GCC optimize("fp-contract=off")

namespace greenmoe::moeits {

namespace {

// Counts below this take c·log c from a table: a joint histogram of a 1408×2048 pair has
// ~10^5 occupied cells, and one log per cell would cost as much as the counting itself.
constexpr uint32_t kLogTableSize = 1u << 16;

// Above this many cells a dense per-thread joint table (4 bytes a cell) stops fitting any
// cache and its clearing dominates; the row-bucketed count takes over.
constexpr size_t kMaxDenseCells = size_t{1} << 22;

// A numpy bin count up to this is counted in a dense array; beyond, by sorting.
constexpr size_t kMaxDenseBins = size_t{1} << 24;

constexpr size_t kParallelMinSize = 1 << 15;

const std::vector<double>& c_log_c_table() {
    static const std::vector<double> table = [] {
        std::vector<double> t(kLogTableSize, 0.0);
        for (uint32_t c = 2; c < kLogTableSize; ++c) {
            t[c] = static_cast<double>(c) * std::log(static_cast<double>(c));
        }
        return t;
    }();
    return table;
}

inline double c_log_c(uint32_t c, const double* table) {
    if (c < kLogTableSize) return table[c];
    const auto d = static_cast<double>(c);
    return d * std::log(d);
}

// H = −Σ (c/n)·log(c/n) = log n − (Σ c·log c)/n.
double entropy_from_sum(double sum_c_log_c, size_t n) {
    const auto dn = static_cast<double>(n);
    return std::log(dn) - sum_c_log_c / dn;
}

void check_size(size_t n) {
    check(n > 0, "cannot bin an empty matrix");
    check(n < std::numeric_limits<uint32_t>::max(),
          "matrix of {} elements is too large for 32-bit histogram counts", n);
}

void set_entropy(BinnedMatrix& m) {
    m.entropy = 0.0;
    if (m.n_used > 1) {
        const double* table = c_log_c_table().data();
        double sum = 0.0;
        for (uint32_t c : m.counts) sum += c_log_c(c, table);
        m.entropy = entropy_from_sum(sum, m.n);
    }
}

template <typename T>
BinnedMatrix bin_matrix_impl(const T* values, size_t n, const BinEdges& edges) {
    BinnedMatrix m;
    m.n = n;
    m.edges = edges;
    m.n_bins = static_cast<int>(m.edges.n_bins);
    const auto n_bins = static_cast<size_t>(m.edges.n_bins);
    const auto sn = static_cast<int64_t>(n);

    std::vector<uint32_t> raw32;
    if (n_bins <= 65535) {
        m.bins16.resize(n);
        assign_bins(m.edges, values, n, m.bins16.data());
    } else {
        raw32.resize(n);
        assign_bins(m.edges, values, n, raw32.data());
    }

    std::vector<uint32_t> remap;  // numpy bin → compact index (dense path)
    if (n_bins <= kMaxDenseBins) {
        std::vector<uint32_t> counts(n_bins, 0);
        if (!m.bins16.empty()) {
            const int n_threads =
                (n >= kParallelMinSize && !omp_in_parallel()) ? omp_get_max_threads() : 1;
            std::vector<uint32_t> local(n_bins * static_cast<size_t>(n_threads), 0);
#pragma omp parallel num_threads(n_threads)
            {
                uint32_t* c = local.data() + n_bins * static_cast<size_t>(omp_get_thread_num());
#pragma omp for schedule(static)
                for (int64_t i = 0; i < sn; ++i) ++c[m.bins16[i]];
            }
            for (int t = 0; t < n_threads; ++t) {
                const uint32_t* c = local.data() + n_bins * static_cast<size_t>(t);
                for (size_t b = 0; b < n_bins; ++b) counts[b] += c[b];
            }
        } else {
            for (uint32_t b : raw32) ++counts[b];
        }
        remap.assign(n_bins, 0);
        for (size_t b = 0; b < n_bins; ++b) {
            if (counts[b] == 0) continue;
            remap[b] = static_cast<uint32_t>(m.used_bins.size());
            m.used_bins.push_back(static_cast<uint32_t>(b));
            m.counts.push_back(counts[b]);
        }
    } else {
        std::vector<uint32_t> sorted = raw32;
        std::sort(sorted.begin(), sorted.end());
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && sorted[j] == sorted[i]) ++j;
            m.used_bins.push_back(sorted[i]);
            m.counts.push_back(static_cast<uint32_t>(j - i));
            i = j;
        }
    }
    m.n_used = static_cast<int>(m.used_bins.size());

    const auto compact = [&](uint32_t bin) -> uint32_t {
        if (!remap.empty()) return remap[bin];
        return static_cast<uint32_t>(std::lower_bound(m.used_bins.begin(), m.used_bins.end(), bin) -
                                     m.used_bins.begin());
    };
    if (!m.bins16.empty()) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinSize)
        for (int64_t i = 0; i < sn; ++i) m.bins16[i] = static_cast<uint16_t>(remap[m.bins16[i]]);
    } else if (m.n_used <= 65535) {
        m.bins16.resize(n);
#pragma omp parallel for schedule(static) if (n >= kParallelMinSize)
        for (int64_t i = 0; i < sn; ++i) m.bins16[i] = static_cast<uint16_t>(compact(raw32[i]));
    } else {
#pragma omp parallel for schedule(static) if (n >= kParallelMinSize)
        for (int64_t i = 0; i < sn; ++i) raw32[i] = compact(raw32[i]);
        m.bins32 = std::move(raw32);
    }

    set_entropy(m);
    return m;
}

// bfloat16 data (every real checkpoint we read): the first radix pass already counted each
// distinct value, so the bins, their counts and a value → compact bin table follow from at
// most 65536 values, and binning the matrix is one table lookup per element. bin_of is the
// same arithmetic assign_bins uses, so the result is the same as the general path's.
bool bin_bf16_exact(const float* values, size_t n, const HighHistogram& high, BinnedMatrix& m) {
    constexpr size_t kBuckets = HighHistogram::kBuckets;
    std::vector<uint16_t> lut(kBuckets, 0);
    int64_t previous = -1;
    for (size_t b = high.min_key >> 16; b <= (high.max_key >> 16); ++b) {
        if (high.counts[b] == 0) continue;
        const float value = order_key_float(bf16_bucket_key(static_cast<uint32_t>(b)));
        const int64_t bin = m.edges.bin_of(static_cast<double>(value));
        check(bin >= previous && bin >= 0, "internal error: bf16 bins out of order");
        if (bin != previous) {  // keys ascend, so bins never decrease
            if (m.used_bins.size() == 65535) return false;
            m.used_bins.push_back(static_cast<uint32_t>(bin));
            m.counts.push_back(0);
            previous = bin;
        }
        m.counts.back() += high.counts[b];
        lut[b] = static_cast<uint16_t>(m.used_bins.size() - 1);
    }
    m.n_used = static_cast<int>(m.used_bins.size());
    m.bins16.resize(n);
    const auto sn = static_cast<int64_t>(n);
    const int n_threads = (n >= kParallelMinSize && !omp_in_parallel()) ? omp_get_max_threads() : 1;
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (int64_t i = 0; i < sn; ++i) m.bins16[i] = lut[float_order_key(values[i]) >> 16];
    set_entropy(m);
    return true;
}

// Per-thread buffers reused across the pairs one thread handles.
struct JointScratch {
    std::vector<uint32_t> table;
    std::vector<uint32_t> row;
    std::vector<uint32_t> next;
    std::vector<uint16_t> sorted16;
    std::vector<uint32_t> sorted32;
};

template <typename IA, typename IB>
double joint_sum_dense(const IA* a, const IB* b, size_t n, size_t nb, size_t cells, JointScratch& s,
                       const double* log_table) {
    if (s.table.size() < cells) s.table.assign(cells, 0);
    uint32_t* table = s.table.data();
    for (size_t i = 0; i < n; ++i) ++table[static_cast<size_t>(a[i]) * nb + b[i]];
    double sum = 0.0;
    for (size_t c = 0; c < cells; ++c) {
        const uint32_t v = table[c];
        if (v != 0) {
            sum += c_log_c(v, log_table);
            table[c] = 0;
        }
    }
    return sum;
}

// Groups B's indices by A's bin (a counting sort), then counts each A-row in a table of
// one row that stays in L1, clearing only the cells it touched.
template <typename IA, typename IB>
double joint_sum_bucketed(const BinnedMatrix& ma, const IA* a, const IB* b, size_t n, size_t nb,
                          std::vector<IB>& sorted, JointScratch& s, const double* log_table) {
    const auto na = static_cast<size_t>(ma.n_used);
    s.next.resize(na);
    uint32_t offset = 0;
    for (size_t r = 0; r < na; ++r) {
        s.next[r] = offset;
        offset += ma.counts[r];
    }
    if (sorted.size() < n) sorted.resize(n);
    for (size_t i = 0; i < n; ++i) sorted[s.next[a[i]]++] = b[i];
    if (s.row.size() < nb) s.row.assign(nb, 0);
    uint32_t* row = s.row.data();
    double sum = 0.0;
    size_t start = 0;
    for (size_t r = 0; r < na; ++r) {
        const size_t end = start + ma.counts[r];
        for (size_t k = start; k < end; ++k) ++row[sorted[k]];
        for (size_t k = start; k < end; ++k) {
            const uint32_t v = row[sorted[k]];
            if (v != 0) {
                sum += c_log_c(v, log_table);
                row[sorted[k]] = 0;
            }
        }
        start = end;
    }
    return sum;
}

enum class JointMethod { automatic, dense, bucketed };

template <typename IA, typename IB>
double joint_sum_typed(const BinnedMatrix& ma, const IA* a, const BinnedMatrix& mb, const IB* b,
                       JointMethod method, JointScratch& s) {
    const double* log_table = c_log_c_table().data();
    const size_t n = ma.n;
    const auto nb = static_cast<size_t>(mb.n_used);
    const size_t cells = static_cast<size_t>(ma.n_used) * nb;
    if (method == JointMethod::automatic) {
        method = cells <= kMaxDenseCells ? JointMethod::dense : JointMethod::bucketed;
    }
    if (method == JointMethod::dense) {
        return joint_sum_dense(a, b, n, nb, cells, s, log_table);
    }
    if constexpr (sizeof(IB) == 2) {
        return joint_sum_bucketed(ma, a, b, n, nb, s.sorted16, s, log_table);
    } else {
        return joint_sum_bucketed(ma, a, b, n, nb, s.sorted32, s, log_table);
    }
}

double joint_entropy_impl(const BinnedMatrix& a, const BinnedMatrix& b, JointMethod method,
                          JointScratch& s) {
    check(a.n == b.n, "NMI of two matrices of different sizes ({} and {} elements)", a.n, b.n);
    if (a.n_used <= 1) return b.entropy;  // one row: the joint histogram is B's histogram
    if (b.n_used <= 1) return a.entropy;
    double sum = 0.0;
    if (!a.wide() && !b.wide()) {
        sum = joint_sum_typed(a, a.bins16.data(), b, b.bins16.data(), method, s);
    } else if (!a.wide()) {
        sum = joint_sum_typed(a, a.bins16.data(), b, b.bins32.data(), method, s);
    } else if (!b.wide()) {
        sum = joint_sum_typed(a, a.bins32.data(), b, b.bins16.data(), method, s);
    } else {
        sum = joint_sum_typed(a, a.bins32.data(), b, b.bins32.data(), method, s);
    }
    return entropy_from_sum(sum, a.n);
}

double nmi_impl(const BinnedMatrix& a, const BinnedMatrix& b, JointScratch& s) {
    check(a.n == b.n, "NMI of two matrices of different sizes ({} and {} elements)", a.n, b.n);
    if (a.entropy == 0.0 || b.entropy == 0.0) return 0.0;
    const double mi = a.entropy + b.entropy - joint_entropy_impl(a, b, JointMethod::automatic, s);
    return mi / std::sqrt(a.entropy * b.entropy);
}

}  // namespace

BinnedMatrix bin_matrix(const float* values, size_t n) {
    check_size(n);
    if (n < kRadixMinSize) return bin_matrix_impl(values, n, auto_bin_edges(values, n));
    const HighHistogram high = high_histogram(values, n);
    const BinEdges edges = auto_bin_edges(values, n, high);
    if (high.bf16_exact) {
        BinnedMatrix m;
        m.n = n;
        m.edges = edges;
        m.n_bins = static_cast<int>(edges.n_bins);
        if (bin_bf16_exact(values, n, high, m)) return m;
    }
    return bin_matrix_impl(values, n, edges);
}

BinnedMatrix bin_matrix(const double* values, size_t n) {
    check_size(n);
    return bin_matrix_impl(values, n, auto_bin_edges(values, n));
}

double joint_entropy(const BinnedMatrix& a, const BinnedMatrix& b) {
    JointScratch s;
    return joint_entropy_impl(a, b, JointMethod::automatic, s);
}

double joint_entropy_dense(const BinnedMatrix& a, const BinnedMatrix& b) {
    JointScratch s;
    return joint_entropy_impl(a, b, JointMethod::dense, s);
}

double joint_entropy_bucketed(const BinnedMatrix& a, const BinnedMatrix& b) {
    JointScratch s;
    return joint_entropy_impl(a, b, JointMethod::bucketed, s);
}

double mutual_information(const BinnedMatrix& a, const BinnedMatrix& b) {
    return a.entropy + b.entropy - joint_entropy(a, b);
}

double nmi(const BinnedMatrix& a, const BinnedMatrix& b) {
    JointScratch s;
    return nmi_impl(a, b, s);
}

std::vector<double> layer_similarity(
    int n_experts, const std::vector<double>& weights,
    const std::function<void(int expert, int kind, std::vector<float>& out)>& get_matrix,
    const std::function<void(size_t done, size_t total)>& progress) {
    check(n_experts >= 1, "layer_similarity: n_experts must be at least 1, got {}", n_experts);
    check(!weights.empty(), "layer_similarity: no matrix kinds (empty weights)");
    const auto e = static_cast<size_t>(n_experts);
    std::vector<double> m(e * e, 0.0);

    std::vector<std::pair<int, int>> pairs;
    for (int i = 0; i < n_experts; ++i) {
        for (int j = i + 1; j < n_experts; ++j) pairs.emplace_back(i, j);
    }
    const size_t total = pairs.size() * weights.size();
    size_t done_before = 0;
    if (progress) progress(0, total);

    // Matrices are fetched on this thread in batches of one per thread and the batch is
    // binned in parallel, one matrix per thread: one barrier per batch instead of several
    // per matrix, which matters on busy machines where a preempted thread stalls a barrier.
    const int batch = std::max(1, std::min(omp_get_max_threads(), n_experts));
    std::vector<std::vector<float>> buffers(static_cast<size_t>(batch));
    for (size_t kind = 0; kind < weights.size(); ++kind) {
        std::vector<BinnedMatrix> binned(e);
        size_t n = 0;
        for (int start = 0; start < n_experts; start += batch) {
            const int count = std::min(batch, n_experts - start);
            for (int b = 0; b < count; ++b) {
                const int ex = start + b;
                std::vector<float>& buffer = buffers[static_cast<size_t>(b)];
                buffer.clear();
                get_matrix(ex, static_cast<int>(kind), buffer);
                check(!buffer.empty(), "expert {} matrix kind {} is empty", ex, kind);
                if (ex == 0) n = buffer.size();
                check(buffer.size() == n,
                      "expert {} matrix kind {} has {} elements, expert 0 has {}: the experts of "
                      "one layer must have matrices of the same shape",
                      ex, kind, buffer.size(), n);
            }
            if (count == 1) {
                binned[static_cast<size_t>(start)] = bin_matrix(buffers[0].data(), n);
                continue;
            }
            std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 1) num_threads(count)
            for (int b = 0; b < count; ++b) {
                try {
                    binned[static_cast<size_t>(start + b)] =
                        bin_matrix(buffers[static_cast<size_t>(b)].data(), n);
                } catch (...) {
#pragma omp critical(greenmoe_moeits_bin_failure)
                    failure = std::current_exception();
                }
            }
            if (failure) std::rethrow_exception(failure);
        }
        for (auto& buffer : buffers) buffer = std::vector<float>();  // no longer needed

        std::vector<double> values(pairs.size(), 0.0);
        std::atomic<size_t> done{0};
        std::atomic<bool> cancelled{false};
        std::exception_ptr failure;
        const auto n_pairs = static_cast<int64_t>(pairs.size());
#pragma omp parallel
        {
            JointScratch scratch;
#pragma omp for schedule(dynamic, 1)
            for (int64_t p = 0; p < n_pairs; ++p) {
                if (cancelled.load(std::memory_order_relaxed)) continue;
                const auto [i, j] = pairs[static_cast<size_t>(p)];
                values[static_cast<size_t>(p)] = nmi_impl(binned[i], binned[j], scratch);
                const size_t now = done.fetch_add(1) + 1;
                if (progress && omp_get_thread_num() == 0) {
                    try {
                        progress(done_before + now, total);
                    } catch (...) {
                        failure = std::current_exception();
                        cancelled = true;
                    }
                }
            }
        }
        if (failure) std::rethrow_exception(failure);
        for (size_t p = 0; p < pairs.size(); ++p) {
            const auto [i, j] = pairs[p];
            const double w = weights[kind] * values[p];
            m[static_cast<size_t>(i) * e + j] += w;
            m[static_cast<size_t>(j) * e + i] += w;
        }
        done_before += pairs.size();
        if (progress) progress(done_before, total);
    }
    return m;
}

}  // namespace greenmoe::moeits

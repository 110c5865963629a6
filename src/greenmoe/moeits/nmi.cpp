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

// A numpy bin count up to this and up to max(n, kMinDenseBins) is counted in dense arrays
// (8 bytes a bin); beyond, by sorting the n bins. The second bound keeps the tables within
// 8·max(n, 65536) bytes (similarity_peak_bytes relies on it): a few outliers can stretch a
// small matrix's bin count to millions, and sorting n values is then the cheaper way anyway.
constexpr size_t kMaxDenseBins = size_t{1} << 24;
constexpr size_t kMinDenseBins = size_t{1} << 16;

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

// The entropy; and used_bins and counts, grown by push_back, trimmed to their size: a wide
// matrix may have millions of used bins, and similarity_peak_bytes counts 8 bytes each.
void finish_binned(BinnedMatrix& m) {
    m.used_bins.shrink_to_fit();
    m.counts.shrink_to_fit();
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
    if (n_bins <= std::min(kMaxDenseBins, std::max(n, kMinDenseBins))) {
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

    finish_binned(m);
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
    finish_binned(m);
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

namespace {

// Bins one group of experts' matrices of one kind into binned[expert]: fetched on the calling
// thread in batches of one per thread, each batch binned in parallel, one matrix per thread
// (one barrier per batch instead of several per matrix, which matters on busy machines where
// a preempted thread stalls a barrier). The decode buffers are freed at the end so that the
// pair phase has their memory (similarity_peak_bytes counts the two phases apart).
struct GroupBinner {
    const std::function<void(int expert, int kind, std::vector<float>& out)>& get_matrix;
    const std::function<void(size_t held)>& on_held;
    int batch = 1;
    std::vector<std::vector<float>> buffers;

    void bin(int first, int last, int kind, size_t& n, std::vector<BinnedMatrix>& binned) {
        buffers.resize(static_cast<size_t>(batch));
        for (int start = first; start < last; start += batch) {
            const int count = std::min(batch, last - start);
            for (int b = 0; b < count; ++b) {
                const int ex = start + b;
                std::vector<float>& buffer = buffers[static_cast<size_t>(b)];
                buffer.clear();
                get_matrix(ex, kind, buffer);
                check(!buffer.empty(), "expert {} matrix kind {} is empty", ex, kind);
                if (ex == 0) n = buffer.size();  // group 0 is always binned first
                check(buffer.size() == n,
                      "expert {} matrix kind {} has {} elements, expert 0 has {}: the experts of "
                      "one layer must have matrices of the same shape",
                      ex, kind, buffer.size(), n);
            }
            if (count == 1) {
                binned[static_cast<size_t>(start)] = bin_matrix(buffers[0].data(), n);
            } else {
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
            if (on_held) {
                on_held(static_cast<size_t>(std::count_if(
                    binned.begin(), binned.end(), [](const BinnedMatrix& m) { return m.n != 0; })));
            }
        }
        for (auto& buffer : buffers) buffer = std::vector<float>();
    }
};

}  // namespace

std::vector<double> layer_similarity(
    int n_experts, const std::vector<double>& weights,
    const std::function<void(int expert, int kind, std::vector<float>& out)>& get_matrix,
    const std::function<void(size_t done, size_t total)>& progress,
    const SimilarityLimits& limits) {
    check(n_experts >= 1, "layer_similarity: n_experts must be at least 1, got {}", n_experts);
    check(!weights.empty(), "layer_similarity: no matrix kinds (empty weights)");
    check(limits.max_binned == 0 || limits.max_binned >= 2,
          "layer_similarity: max_binned must be 0 (no limit) or at least 2 (a pair), got {}",
          limits.max_binned);
    check(limits.max_threads >= 0,
          "layer_similarity: max_threads must be 0 (no limit) or positive, got {}",
          limits.max_threads);
    const auto e = static_cast<size_t>(n_experts);
    const int threads = limits.max_threads > 0 ? std::min(limits.max_threads, omp_get_max_threads())
                                               : omp_get_max_threads();
    const int group = (limits.max_binned == 0 || limits.max_binned >= e)
                          ? n_experts
                          : static_cast<int>(limits.max_binned / 2);
    const int n_groups = (n_experts + group - 1) / group;
    const auto first_of = [&](int g) { return g * group; };
    const auto end_of = [&](int g) { return std::min(n_experts, (g + 1) * group); };

    std::vector<double> m(e * e, 0.0);
    const size_t total = weights.size() * (e * (e - 1) / 2);
    size_t done_before = 0;
    if (progress) progress(0, total);

    GroupBinner binner{get_matrix, limits.on_held, std::max(1, std::min(threads, group)), {}};
    for (size_t kind = 0; kind < weights.size(); ++kind) {
        std::vector<BinnedMatrix> binned(e);
        std::vector<double> values(e * e, 0.0);  // [i·E + j], i < j
        size_t n = 0;

        const auto compare = [&](const std::vector<std::pair<int, int>>& block) {
            std::atomic<size_t> done{0};
            std::atomic<bool> cancelled{false};
            std::exception_ptr failure;
            const auto n_pairs = static_cast<int64_t>(block.size());
            const int team = static_cast<int>(std::min<int64_t>(threads, n_pairs));
#pragma omp parallel num_threads(team)
            {
                JointScratch scratch;
#pragma omp for schedule(dynamic, 1)
                for (int64_t p = 0; p < n_pairs; ++p) {
                    if (cancelled.load(std::memory_order_relaxed)) continue;
                    const auto [i, j] = block[static_cast<size_t>(p)];
                    values[static_cast<size_t>(i) * e + static_cast<size_t>(j)] = nmi_impl(
                        binned[static_cast<size_t>(i)], binned[static_cast<size_t>(j)], scratch);
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
            done_before += block.size();
            if (progress) progress(done_before, total);
        };
        const auto free_group = [&](int g) {
            for (int ex = first_of(g); ex < end_of(g); ++ex) {
                binned[static_cast<size_t>(ex)] = BinnedMatrix();
            }
        };

        binner.bin(first_of(0), end_of(0), static_cast<int>(kind), n, binned);
        for (int a = 0; a < n_groups; ++a) {
            // a's own pairs share a parallel region with its first cross block.
            std::vector<std::pair<int, int>> block;
            for (int i = first_of(a); i < end_of(a); ++i) {
                for (int j = i + 1; j < end_of(a); ++j) block.emplace_back(i, j);
            }
            if (a == n_groups - 1 && !block.empty()) compare(block);
            // Down to a+1, so that the group binned last is the next a.
            for (int b = n_groups - 1; b > a; --b) {
                binner.bin(first_of(b), end_of(b), static_cast<int>(kind), n, binned);
                for (int i = first_of(a); i < end_of(a); ++i) {
                    for (int j = first_of(b); j < end_of(b); ++j) block.emplace_back(i, j);
                }
                compare(block);
                block.clear();
                if (b != a + 1) free_group(b);
            }
            free_group(a);
        }

        for (int i = 0; i < n_experts; ++i) {
            for (int j = i + 1; j < n_experts; ++j) {
                const double w = weights[kind] * values[static_cast<size_t>(i) * e + j];
                m[static_cast<size_t>(i) * e + j] += w;
                m[static_cast<size_t>(j) * e + i] += w;
            }
        }
    }
    return m;
}

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// bin_matrix's per-thread tables: the high-half histogram (256 KiB), the low halves of up to
// four buckets (1 MiB), dense counts of up to 65535 bins (256 KiB a thread, plus counts and
// remap). A single binning runs on every OpenMP thread, a batch on one thread per matrix.
constexpr uint64_t kBinThreadBytes = 2 * kMiB;
// The BinnedMatrix itself and allocator headers.
constexpr uint64_t kMatrixOverheadBytes = 256;
// The dense tables of bins for the general path when n_bins <= 65535 (counts, remap).
constexpr uint64_t kSmallBinTablesBytes = 512 * 1024;

// Memory of one layer's similarity, per item (see similarity_peak_bytes).
struct PeakParts {
    uint64_t held = 0;         // one binned matrix
    uint64_t slot = 0;         // one matrix being decoded and binned, beyond its result
    uint64_t pair_thread = 0;  // one pair thread's JointScratch at its largest
    uint64_t fixed = 0;        // M, the pair values, the c·log c table
};

PeakParts peak_parts(const MatrixFootprint& f, int n_experts) {
    const auto n = static_cast<uint64_t>(f.n);
    const bool narrow = f.stored != StoredFloat::wide;
    // Occupied bins: at most the distinct values, fewer than 65535 for 16-bit floats.
    const uint64_t used = narrow ? std::min<uint64_t>(n, 65535) : n;
    PeakParts p;
    // bins16 + used_bins/counts (trimmed), or for a wide matrix up to bins32 + n used bins.
    p.held = (narrow ? 2 * n + 8 * used : 12 * n) + kMatrixOverheadBytes;
    // The decoded floats; then bfloat16 data of kRadixMinSize or more values is binned by
    // table lookup, anything else may hold a float64 copy and its sorted copy (16n, below
    // kRadixMinSize) or raw 4-byte bins plus dense tables of at most max(n, 65536) bins
    // (4n + 8n) or a sorted copy (4n + 4n).
    const bool lookup = f.stored == StoredFloat::bf16 && f.n >= kRadixMinSize;
    p.slot = 4 * n + (lookup ? 0 : 16 * n + kSmallBinTablesBytes);
    // The dense joint table (at most kMaxDenseCells of 4 bytes), and the bucketed count's
    // grouped copy of B (sorted16, and sorted32 when a matrix is wide), row and next.
    const uint64_t cells = used >= 2048 ? kMaxDenseCells : used * used;
    p.pair_thread =
        4 * std::min<uint64_t>(cells, kMaxDenseCells) + (narrow ? 2 * n : 6 * n) + 8 * used;
    const auto e = static_cast<uint64_t>(n_experts);
    p.fixed = 3 * 8 * e * e + kLogTableSize * 8;
    return p;
}

int resolve_threads(int n_threads) {
    return n_threads > 0 ? n_threads : omp_get_max_threads();
}

// Effective group size (E when unlimited) for max_binned.
int group_size(int n_experts, size_t max_binned) {
    if (max_binned == 0 || max_binned >= static_cast<size_t>(n_experts)) return n_experts;
    return static_cast<int>(max_binned / 2);
}

uint64_t peak_bytes(const PeakParts& p, int n_experts, int group, int threads, int total_threads) {
    const int held = group == n_experts ? n_experts : 2 * group;
    const auto batch = static_cast<uint64_t>(std::min(threads, group));
    const uint64_t binning =
        batch * p.slot + static_cast<uint64_t>(total_threads) * kBinThreadBytes;
    const uint64_t pairs = static_cast<uint64_t>(threads) * p.pair_thread;
    return p.fixed + static_cast<uint64_t>(held) * p.held + std::max(binning, pairs);
}

uint64_t ceil_div(uint64_t a, uint64_t b) {
    return (a + b - 1) / b;
}

// Rough time of one kind in units of one matrix pass (a binning or a pair NMI), following
// layer_similarity's schedule: batches of min(threads, g) binnings (a lone binning is itself
// parallel, at about half efficiency), and blocks of pairs each shared by `threads`.
double schedule_cost(int n_experts, int g, int threads, int total_threads) {
    const auto e = static_cast<uint64_t>(n_experts);
    const auto t = static_cast<uint64_t>(threads);
    const int batch = std::min(threads, g);
    const double batch_cost =
        batch > 1 ? 1.0 : std::min(1.0, 2.0 / static_cast<double>(total_threads));
    const auto gg = static_cast<uint64_t>(g);
    const uint64_t groups = ceil_div(e, gg);
    if (groups == 1) {
        return static_cast<double>(ceil_div(e, static_cast<uint64_t>(batch))) * batch_cost +
               static_cast<double>(ceil_div(e * (e - 1) / 2, t));
    }
    const uint64_t r = e - (groups - 1) * gg;  // the last group
    const uint64_t cross_blocks = (groups - 1) * (groups - 2) / 2;
    const uint64_t full_binnings = 1 + cross_blocks;  // group 0, then each b < G−1 b times
    const uint64_t batches = full_binnings * ceil_div(gg, static_cast<uint64_t>(batch)) +
                             (groups - 1) * ceil_div(r, static_cast<uint64_t>(batch));
    const uint64_t first_block = gg * (gg - 1) / 2 + gg * r;
    const uint64_t pair_steps = (groups - 1) * ceil_div(first_block, t) +
                                cross_blocks * ceil_div(gg * gg, t) +
                                (r > 1 ? ceil_div(r * (r - 1) / 2, t) : 0);
    return static_cast<double>(batches) * batch_cost + static_cast<double>(pair_steps);
}

}  // namespace

uint64_t similarity_peak_bytes(const MatrixFootprint& matrix, int n_experts,
                               const SimilarityLimits& limits, int n_threads) {
    check(n_experts >= 1, "similarity_peak_bytes: n_experts must be at least 1, got {}", n_experts);
    const int total_threads = resolve_threads(n_threads);
    const int threads =
        limits.max_threads > 0 ? std::min(limits.max_threads, total_threads) : total_threads;
    return peak_bytes(peak_parts(matrix, n_experts), n_experts,
                      group_size(n_experts, limits.max_binned), threads, total_threads);
}

std::optional<SimilarityLimits> plan_similarity(uint64_t budget, const MatrixFootprint& matrix,
                                                int n_experts, int n_threads) {
    check(n_experts >= 1, "plan_similarity: n_experts must be at least 1, got {}", n_experts);
    const int total_threads = resolve_threads(n_threads);
    const PeakParts parts = peak_parts(matrix, n_experts);
    if (peak_bytes(parts, n_experts, n_experts, total_threads, total_threads) <= budget) {
        return SimilarityLimits{};
    }
    std::optional<SimilarityLimits> best;
    double best_cost = 0.0;
    for (int t = total_threads; t >= 1; --t) {
        // Even max_binned only (an odd one holds no more than the even one below), largest
        // first, so that on equal cost fewer re-binnings and then more threads win.
        for (int g = n_experts; g >= 1; g = g == n_experts ? (n_experts - 1) / 2 : g - 1) {
            if (peak_bytes(parts, n_experts, g, t, total_threads) > budget) continue;
            const double cost = schedule_cost(n_experts, g, t, total_threads);
            if (!best || cost < best_cost) {
                best_cost = cost;
                best = SimilarityLimits{};
                best->max_binned = g == n_experts ? 0 : static_cast<size_t>(2 * g);
                best->max_threads = t == total_threads ? 0 : t;
            }
        }
    }
    return best;
}

}  // namespace greenmoe::moeits

// NMI of two weight matrices and the per-layer expert similarity matrix (MoEITS spec §1–2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "greenmoe/moeits/histogram.h"

namespace greenmoe::moeits {

// One matrix binned once with numpy's bins='auto' edges. The partner of a pair never
// changes a matrix's edges, so each matrix is binned once and every pair reuses the indices.
// Only occupied bins matter to an entropy, so elements carry a compact index into the
// occupied bins (used_bins maps it back to numpy's bin): the joint table of a pair is
// used(A) × used(B), which stays small even when outliers stretch numpy's bin count.
// Compact indices live in bins16 when n_used <= 65535 (2 bytes/element, the common case),
// otherwise in bins32; exactly one of the two is filled.
struct BinnedMatrix {
    size_t n = 0;
    int n_bins = 0;        // numpy's bin count
    double entropy = 0.0;  // nats, 0·log 0 = 0
    BinEdges edges;
    int n_used = 0;                   // occupied bins
    std::vector<uint32_t> used_bins;  // numpy bin of each compact index, ascending
    std::vector<uint32_t> counts;     // elements in each compact bin
    std::vector<uint16_t> bins16;
    std::vector<uint32_t> bins32;

    bool wide() const { return !bins32.empty(); }
    uint32_t compact_bin(size_t i) const { return wide() ? bins32[i] : bins16[i]; }
    // numpy's bin index of element i (np.histogram's assignment with these edges).
    uint32_t bin(size_t i) const { return used_bins[compact_bin(i)]; }
};

// values are already decoded to float; float→double is exact, so this matches numpy run
// on the float64 copy of the same values. Throws Error on n == 0, n >= 2^32 or non-finite
// values. Parallel (OpenMP) inside.
BinnedMatrix bin_matrix(const float* values, size_t n);

// Same for float64 input (tests and tools that already hold doubles).
BinnedMatrix bin_matrix(const double* values, size_t n);

// Mutual information I = H(A) + H(B) − H(A,B) in nats, the joint histogram formed from the
// cached bin indices (this equals np.histogram2d with the two edge sets: both put x in the
// last edge ≤ x, the last bin closed). Throws Error when a.n != b.n.
double mutual_information(const BinnedMatrix& a, const BinnedMatrix& b);

// H(A,B) alone, nats. The joint table is dense (used(A)·used(B) cells, per thread) when it
// has at most 2^22 cells, otherwise counted row by row after grouping B by A's bin; the
// two _dense/_bucketed variants force one way (tests check they agree).
double joint_entropy(const BinnedMatrix& a, const BinnedMatrix& b);
double joint_entropy_dense(const BinnedMatrix& a, const BinnedMatrix& b);
double joint_entropy_bucketed(const BinnedMatrix& a, const BinnedMatrix& b);

// NMI = I / sqrt(H(A)·H(B)) (spec §1). When H(A) or H(B) is exactly 0 (a constant matrix:
// one bin) I is 0 too and numpy's quotient is 0/0 = nan; we return 0 instead — a constant
// matrix shares no information with anything — as the reference's own batched version
// does (it returns 0 when sqrt(H(A)·H(B)) <= 1e-8). A nan would make mean(M) nan and so
// silently disable pruning for the whole layer.
double nmi(const BinnedMatrix& a, const BinnedMatrix& b);

// Per-architecture kind weights of spec §2, in the order of the kinds.
inline std::vector<double> mixtral_kind_weights() {
    return {1.0 / 3, 1.0 / 3, 1.0 / 3};
}  // w1 w2 w3
inline std::vector<double> qwen_deepseek_kind_weights() {
    return {0.2, 0.4, 0.4};
}  // gate up down
inline std::vector<double> gpt_kind_weights() {
    return {0.5, 0.5};
}  // c_fc c_proj

// What layer_similarity may hold at once. Both default to no limit (plan_similarity turns
// a byte budget into them).
struct SimilarityLimits {
    // Most binned matrices held at once; 0 = no limit (all E of one kind), else at least 2.
    // Below E the experts are compared group against group, groups of max_binned / 2.
    size_t max_binned = 0;
    // Most matrices decoded and binned at once, and most threads comparing pairs; 0 = the
    // OpenMP thread count.
    int max_threads = 0;
    // Test hook: called on the calling thread after each batch of matrices is binned, with
    // how many binned matrices are held then (counted from what is really stored).
    std::function<void(size_t held)> on_held;
};

// Spec §2: M (E×E row-major, symmetric, zero diagonal) for one layer,
// M[i][j] = Σ_k weights[k]·NMI_k(i, j), summed in kind order starting from 0.
// get_matrix(expert, kind, out) fills `out` (resized by the callee) with that expert's matrix
// of kind `kind` decoded to float; weights.size() is the number of kinds; all experts'
// matrices of one kind must have the same element count (Error otherwise). Kinds are done
// one at a time, pairs in parallel (OpenMP), and get_matrix is called from the calling
// thread only. progress(done, total) is optional, called from the calling thread, total =
// kinds · E(E−1)/2 pairs. An exception thrown by progress (e.g. to cancel) propagates after
// the running pairs finish.
//
// Without limits every matrix of a kind is binned once (E calls of get_matrix per kind,
// experts in order) and E binned matrices, about 2 bytes per element each, are held.
// With limits.max_binned = m < E, the experts fall into G = ceil(E/g) groups of g = m/2
// (the last one smaller). Group 0 is binned; then for each group a in order its own pairs
// are compared, and for each group b from G−1 down to a+1, b is binned, the pairs (a, b)
// compared and b freed — except a+1, which stays as the next a — then a is freed. At most
// 2g ≤ m binned matrices are held, at the cost of re-reading and re-binning: group b is
// binned max(1, b) times, about E(G+1)/2 ≈ E²/m binnings per kind instead of E, and
// each block of pairs only has g² pairs to share among threads. Binning is deterministic and
// every pair's value goes to the same place, so M is bit-identical whatever the limits.
std::vector<double> layer_similarity(
    int n_experts, const std::vector<double>& weights,
    const std::function<void(int expert, int kind, std::vector<float>& out)>& get_matrix,
    const std::function<void(size_t done, size_t total)>& progress = {},
    const SimilarityLimits& limits = {});

// How a layer's matrices are stored, which decides what binning them costs in memory.
enum class StoredFloat {
    bf16,  // at most 65535 distinct values (2-byte bin indices), binned by table lookup
    f16,   // at most 65535 distinct values, binned by the general path
    wide,  // f32/f64: may need 4-byte indices and a per-element table of used bins
};

struct MatrixFootprint {
    size_t n = 0;  // elements of the layer's largest matrix
    StoredFloat stored = StoredFloat::wide;
};

// An upper bound on the bytes layer_similarity allocates at once for a layer of n_experts
// such matrices under `limits` (on_held ignored), with n_threads OpenMP threads (0: the
// current count): the binned matrices held, plus the larger of the binning batch's working
// memory (decoded matrices and bin_matrix's temporaries) and the pair threads' scratch
// (joint tables). The memory-mapped model pages are not counted (the kernel can drop them).
uint64_t similarity_peak_bytes(const MatrixFootprint& matrix, int n_experts,
                               const SimilarityLimits& limits, int n_threads = 0);

// The limits under which a layer fits `budget` bytes (similarity_peak_bytes) and which a
// rough cost model (a binning and a pair-NMI cost about the same) expects to run fastest:
// no limits when everything fits, else the cheapest fitting (max_binned, max_threads).
// nullopt when even two binned matrices and one thread do not fit.
std::optional<SimilarityLimits> plan_similarity(uint64_t budget, const MatrixFootprint& matrix,
                                                int n_experts, int n_threads = 0);

}  // namespace greenmoe::moeits

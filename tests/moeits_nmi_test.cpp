// Tests of numpy-compatible binning and NMI (MoEITS spec §1–2) against numpy/scipy fixtures.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "greenmoe/core/half.h"
#include "greenmoe/io/npy.h"
#include "greenmoe/moeits/histogram.h"
#include "greenmoe/moeits/nmi.h"
#include "greenmoe/moeits/prune_rule.h"
#include "test_support.h"

namespace greenmoe::moeits {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Entropies and NMI are sums of ~10^5 logs computed in another order than scipy's.
constexpr double kTolerance = 1e-9;

fs::path fixture_dir() {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "moeits";
}

json load_json(const std::string& name) {
    std::ifstream in(fixture_dir() / name);
    EXPECT_TRUE(in.good()) << "missing fixture " << (fixture_dir() / name)
                           << " (tools/fixtures/make_moeits_fixtures.py writes it)";
    return json::parse(in);
}

// The C++ twin of the script's wide_formula (integer arithmetic and one rounding per value).
std::vector<double> wide_formula(size_t n, double cluster_scale) {
    std::vector<double> x(n);
    for (size_t i = 0; i < n; ++i) {
        const auto ii = static_cast<int64_t>(i);
        if (i % 5 < 3) {
            x[i] = static_cast<double>((ii * 7919) % 1000) * cluster_scale;
        } else {
            x[i] = static_cast<double>((ii * 104729) % 1000003 - 500001) / 500001.5;
        }
    }
    return x;
}

std::vector<double> case_values(const json& c) {
    if (c.contains("values")) {
        const NpyArray a = read_npy(fixture_dir() / c["values"].get<std::string>());
        EXPECT_EQ(a.descr, "<f8");
        std::vector<double> v(static_cast<size_t>(a.numel()));
        std::memcpy(v.data(), a.data.data(), v.size() * sizeof(double));
        return v;
    }
    if (c.contains("values_f32")) {
        const std::vector<float> f =
            read_npy(fixture_dir() / c["values_f32"].get<std::string>()).to_f32();
        return {f.begin(), f.end()};
    }
    if (c.contains("values_bf16")) {
        const NpyArray a = read_npy(fixture_dir() / c["values_bf16"].get<std::string>());
        EXPECT_EQ(a.descr, "<u2");
        std::vector<double> v(static_cast<size_t>(a.numel()));
        for (size_t i = 0; i < v.size(); ++i) {
            uint16_t bits = 0;
            std::memcpy(&bits, a.data.data() + 2 * i, 2);
            v[i] = bf16_to_f32(bits);
        }
        return v;
    }
    // "wide:<n>:<scale>"
    const std::string f = c["formula"].get<std::string>();
    const size_t a = f.find(':');
    const size_t b = f.find(':', a + 1);
    return wide_formula(std::stoul(f.substr(a + 1, b - a - 1)), std::stod(f.substr(b + 1)));
}

bool float_representable(const std::vector<double>& v) {
    for (double x : v) {
        if (static_cast<double>(static_cast<float>(x)) != x) return false;
    }
    return true;
}

std::vector<float> to_float(const std::vector<double>& v) {
    return {v.begin(), v.end()};
}

// Everything the fixture states about one matrix's binning, checked exactly.
void expect_binning_matches(const json& c, const std::vector<double>& values, const BinnedMatrix& m,
                            const std::string& path) {
    SCOPED_TRACE(c["name"].get<std::string>() + " via " + path);
    ASSERT_EQ(m.n, c["n"].get<size_t>());
    ASSERT_EQ(m.n_bins, c["n_bins"].get<int>());
    EXPECT_EQ(m.edges.first, c["first"].get<double>());
    EXPECT_EQ(m.edges.last, c["last"].get<double>());
    EXPECT_EQ(m.edges.iqr, c["iqr"].get<double>());
    EXPECT_EQ(m.n_used, c["n_used"].get<int>());
    EXPECT_NEAR(m.entropy, c["entropy"].get<double>(), kTolerance);
    if (c.contains("edges")) {
        const auto edges = c["edges"].get<std::vector<double>>();
        for (size_t i = 0; i < edges.size(); ++i) {
            ASSERT_EQ(m.edges.edge(static_cast<int64_t>(i)), edges[i]) << "edge " << i;
        }
        const auto counts = c["counts"].get<std::vector<int64_t>>();
        std::vector<int64_t> mine(counts.size(), 0);
        for (size_t i = 0; i < m.n; ++i) ++mine[m.bin(i)];
        EXPECT_EQ(mine, counts);
    } else {
        for (const auto& s : c["edge_samples"]) {
            EXPECT_EQ(m.edges.edge(s[0].get<int64_t>()), s[1].get<double>()) << "edge " << s[0];
        }
    }
    int64_t sum = 0;
    int64_t weighted = 0;
    for (size_t i = 0; i < m.n; ++i) {
        sum += m.bin(i);
        weighted += static_cast<int64_t>(m.bin(i)) * static_cast<int64_t>(i % 65521);
    }
    EXPECT_EQ(sum, c["index_sum"].get<int64_t>());
    EXPECT_EQ(weighted, c["index_weighted_sum"].get<int64_t>());
    if (c.contains("indices")) {
        const NpyArray a = read_npy(fixture_dir() / c["indices"].get<std::string>());
        ASSERT_EQ(static_cast<size_t>(a.numel()), m.n);
        size_t wrong = 0;
        for (size_t i = 0; i < m.n; ++i) {
            uint32_t expected = 0;
            std::memcpy(&expected, a.data.data() + 4 * i, 4);
            if (m.bin(i) != expected) {
                if (wrong++ < 5)
                    ADD_FAILURE() << "element " << i << " = " << values[i] << ": bin " << m.bin(i)
                                  << ", numpy " << expected;
            }
        }
        EXPECT_EQ(wrong, 0u);
    }
    // The compact indices and counts describe the same histogram.
    std::vector<uint32_t> counts(static_cast<size_t>(m.n_used), 0);
    for (size_t i = 0; i < m.n; ++i) ++counts[m.compact_bin(i)];
    EXPECT_EQ(counts, m.counts);
}

TEST(MoeitsHistogram, EdgesIndicesAndEntropyMatchNumpyOnEveryCase) {
    const json h = load_json("histogram_cases.json");
    int cases = 0;
    int float_cases = 0;
    for (const auto& c : h["cases"]) {
        const std::vector<double> values = case_values(c);
        ASSERT_EQ(values.size(), c["n"].get<size_t>());
        const BinnedMatrix m = bin_matrix(values.data(), values.size());
        expect_binning_matches(c, values, m, "double");
        EXPECT_EQ(percentile_linear(values, 25.0), c["p25"].get<double>());
        EXPECT_EQ(percentile_linear(values, 75.0), c["p75"].get<double>());
        if (float_representable(values)) {
            const std::vector<float> f = to_float(values);
            expect_binning_matches(c, values, bin_matrix(f.data(), f.size()), "float");
            ++float_cases;
        }
        ++cases;
    }
    EXPECT_GE(cases, 25);
    EXPECT_GE(float_cases, 10);  // bf16/f32 cases, grids, the radix-select sizes
}

TEST(MoeitsHistogram, FixturesCoverTheInterestingShapes) {
    const json h = load_json("histogram_cases.json");
    std::map<std::string, json> by_name;
    for (const auto& c : h["cases"]) by_name[c["name"].get<std::string>()] = c;
    EXPECT_EQ(by_name.at("cauchy")["estimator"], "fd");
    EXPECT_EQ(by_name.at("uniform_sturges")["estimator"], "sturges");
    EXPECT_EQ(by_name.at("iqr_zero")["iqr"].get<double>(), 0.0);
    EXPECT_EQ(by_name.at("constant")["n_bins"].get<int>(), 1);
    EXPECT_GE(by_name.at("planted_ties")["ties_on_edges"].get<int>(), 300);
    EXPECT_GE(by_name.at("grid_ties")["ties_on_edges"].get<int>(), 100);
    EXPECT_GT(by_name.at("wide_dense")["n_bins"].get<int>(), 65535);
    EXPECT_GT(by_name.at("wide_dense")["n_used"].get<int>(), 65535);     // 32-bit compact indices
    EXPECT_GT(by_name.at("wide_sorted")["n_bins"].get<int>(), 1 << 24);  // counted by sorting
    EXPECT_GE(by_name.at("gauss_bf16_large")["n"].get<int>(), 65536);    // radix select
}

TEST(MoeitsHistogram, DegenerateRangeIsWidenedByHalf) {
    const std::vector<double> v(10, 2.0);
    const BinnedMatrix m = bin_matrix(v.data(), v.size());
    EXPECT_EQ(m.n_bins, 1);
    EXPECT_EQ(m.edges.first, 1.5);
    EXPECT_EQ(m.edges.last, 2.5);
    EXPECT_EQ(m.entropy, 0.0);
    for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(m.bin(i), 0u);
}

TEST(MoeitsHistogram, LastBinIsClosedAndInteriorEdgesOpenToTheRight) {
    // 0..8 in steps of 1 with n = 9: Sturges gives ceil(8 / (log2(9)+1)·…) bins; whatever
    // the count, a value on an interior edge goes right and the maximum stays in the last bin.
    std::vector<double> v;
    for (int i = 0; i <= 8; ++i) v.push_back(i);
    const BinnedMatrix m = bin_matrix(v.data(), v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        const uint32_t b = m.bin(i);
        EXPECT_LE(m.edges.edge(b), v[i]);
        if (static_cast<int>(b) == m.n_bins - 1) {
            EXPECT_LE(v[i], m.edges.last);
        } else {
            EXPECT_LT(v[i], m.edges.edge(b + 1));
        }
    }
    EXPECT_EQ(static_cast<int>(m.bin(8)), m.n_bins - 1);
}

TEST(MoeitsHistogram, RadixSelectMatchesSortingForFloats) {
    std::mt19937_64 rng(7);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> f(100003);
    for (float& x : f) x = normal(rng);
    // signed zeros, duplicates and bf16-rounded values in the same matrix
    for (size_t i = 0; i < f.size(); i += 97) f[i] = (i % 2) ? 0.0f : -0.0f;
    for (size_t i = 1; i < f.size(); i += 13) f[i] = bf16_to_f32(f32_to_bf16(f[i]));
    const std::vector<double> d(f.begin(), f.end());
    const BinnedMatrix by_sort = bin_matrix(d.data(), d.size());
    for (int threads : {1, 2, 3}) {
        testing::ScopedThreads scoped(threads);
        const BinnedMatrix by_radix = bin_matrix(f.data(), f.size());
        EXPECT_EQ(by_radix.n_bins, by_sort.n_bins);
        EXPECT_EQ(by_radix.edges.first, by_sort.edges.first);
        EXPECT_EQ(by_radix.edges.last, by_sort.edges.last);
        EXPECT_EQ(by_radix.edges.iqr, by_sort.edges.iqr);
        EXPECT_EQ(by_radix.bins16, by_sort.bins16);
        EXPECT_EQ(by_radix.entropy, by_sort.entropy);
    }
}

TEST(MoeitsHistogram, Bf16LookupPathMatchesTheGeneralPath) {
    // Every value a bfloat16 number: binning goes through the per-value lookup table.
    std::mt19937_64 rng(11);
    std::normal_distribution<float> normal(0.001f, 0.015f);
    std::vector<float> f(90001);
    for (float& x : f) x = bf16_to_f32(f32_to_bf16(normal(rng)));
    for (size_t i = 0; i < f.size(); i += 101) f[i] = (i % 2) ? 0.0f : -0.0f;
    ASSERT_TRUE(high_histogram(f.data(), f.size()).bf16_exact);
    const std::vector<double> d(f.begin(), f.end());
    const BinnedMatrix general = bin_matrix(d.data(), d.size());
    for (int threads : {1, 2}) {
        testing::ScopedThreads scoped(threads);
        const BinnedMatrix fast = bin_matrix(f.data(), f.size());
        EXPECT_EQ(fast.n_bins, general.n_bins);
        EXPECT_EQ(fast.edges.iqr, general.edges.iqr);
        EXPECT_EQ(fast.used_bins, general.used_bins);
        EXPECT_EQ(fast.counts, general.counts);
        EXPECT_EQ(fast.bins16, general.bins16);
        EXPECT_EQ(fast.entropy, general.entropy);
    }
    // one value that is not a bfloat16 number takes the general float path, same answer
    f[5] = std::nextafter(f[5], 1.0f);
    ASSERT_FALSE(high_histogram(f.data(), f.size()).bf16_exact);
    const std::vector<double> d2(f.begin(), f.end());
    EXPECT_EQ(bin_matrix(f.data(), f.size()).bins16, bin_matrix(d2.data(), d2.size()).bins16);
}

TEST(MoeitsHistogram, PercentileAndPairwiseSumFollowNumpy) {
    // np.percentile([1, 2, 3, 4], [0, 10, 25, 50, 100]) = 1, 1.3, 1.75, 2.5, 4
    const std::vector<double> v{4.0, 1.0, 3.0, 2.0};
    EXPECT_EQ(percentile_linear(v, 0), 1.0);
    EXPECT_EQ(percentile_linear(v, 25), 1.75);
    EXPECT_EQ(percentile_linear(v, 50), 2.5);
    EXPECT_EQ(percentile_linear(v, 100), 4.0);
    EXPECT_NEAR(percentile_linear(v, 10), 1.3, 1e-15);
    // np.add.reduce of a_i = ±1/(i+1)·10^(i mod 7): values from numpy 1.24 (the naive
    // left-to-right sums differ from these for n = 100, 129, 1000, 20000).
    const double pow10[7] = {1.0, 10.0, 100.0, 1000.0, 1e4, 1e5, 1e6};
    std::vector<double> a(20000);
    for (size_t i = 0; i < a.size(); ++i) {
        a[i] = ((i % 2) ? -1.0 : 1.0) * (1.0 / static_cast<double>(i + 1)) * pow10[i % 7];
    }
    EXPECT_EQ(numpy_pairwise_sum(a.data(), 7), 0x1.f3e1cf3cf3cf3p+16);
    EXPECT_EQ(numpy_pairwise_sum(a.data(), 100), 0x1.48017daf5ffd2p+16);
    EXPECT_EQ(numpy_pairwise_sum(a.data(), 129), 0x1.4bc644cc3944cp+16);
    EXPECT_EQ(numpy_pairwise_sum(a.data(), 1000), 0x1.575400239d8dfp+16);
    EXPECT_EQ(numpy_pairwise_sum(a.data(), 20000), 0x1.598d435a02630p+16);
    EXPECT_EQ(numpy_mean(a), 0x1.1b13777b4c17cp+2);
}

TEST(MoeitsHistogram, RejectsNonFiniteAndEmptyInput) {
    std::vector<float> f(70000, 0.5f);
    f[123] = std::nanf("");
    EXPECT_NE(testing::error_message([&] { bin_matrix(f.data(), f.size()); }).find("NaN"),
              std::string::npos);
    std::vector<double> d{1.0, INFINITY, 2.0};
    EXPECT_NE(testing::error_message([&] { bin_matrix(d.data(), d.size()); }).find("infinite"),
              std::string::npos);
    EXPECT_NE(testing::error_message([&] { bin_matrix(d.data(), 0); }).find("empty"),
              std::string::npos);
}

TEST(MoeitsNmi, EntropiesMiAndNmiMatchNumpyOnEveryPair) {
    const json h = load_json("histogram_cases.json");
    std::map<std::string, json> cases;
    for (const auto& c : h["cases"]) cases[c["name"].get<std::string>()] = c;
    std::map<std::string, BinnedMatrix> binned;
    const auto get = [&](const std::string& name) -> const BinnedMatrix& {
        auto it = binned.find(name);
        if (it == binned.end()) {
            const std::vector<double> v = case_values(cases.at(name));
            it = binned.emplace(name, bin_matrix(v.data(), v.size())).first;
        }
        return it->second;
    };
    int checked = 0;
    for (const auto& p : h["pairs"]) {
        const std::string an = p["a"];
        const std::string bn = p["b"];
        SCOPED_TRACE(an + " × " + bn);
        const BinnedMatrix& a = get(an);
        const BinnedMatrix& b = get(bn);
        EXPECT_NEAR(a.entropy, p["h_a"].get<double>(), kTolerance);
        EXPECT_NEAR(b.entropy, p["h_b"].get<double>(), kTolerance);
        EXPECT_NEAR(joint_entropy(a, b), p["h_ab"].get<double>(), kTolerance);
        EXPECT_NEAR(mutual_information(a, b), p["mi"].get<double>(), kTolerance);
        EXPECT_NEAR(nmi(a, b), p["nmi_for_m"].get<double>(), kTolerance);
        if (p["nmi"].is_null()) {
            EXPECT_EQ(nmi(a, b), 0.0);  // numpy: 0/0 = nan; we: 0
        }
        // Both joint-count strategies give the same table.
        const double cells = static_cast<double>(a.n_used) * b.n_used;
        const double bucketed = joint_entropy_bucketed(a, b);
        EXPECT_NEAR(bucketed, p["h_ab"].get<double>(), kTolerance);
        if (cells <= double(1 << 24)) {
            EXPECT_NEAR(joint_entropy_dense(a, b), bucketed, 1e-12);
        }
        ++checked;
    }
    EXPECT_GE(checked, 18);
}

TEST(MoeitsNmi, IdenticalMatricesHaveNmiOneAndCorrelatedOnesMore) {
    std::mt19937_64 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> a(5000), b(5000), c(5000);
    for (size_t i = 0; i < a.size(); ++i) {
        a[i] = normal(rng);
        b[i] = a[i] + 0.3f * normal(rng);
        c[i] = normal(rng);
    }
    const BinnedMatrix ba = bin_matrix(a.data(), a.size());
    const BinnedMatrix bb = bin_matrix(b.data(), b.size());
    const BinnedMatrix bc = bin_matrix(c.data(), c.size());
    EXPECT_NEAR(nmi(ba, ba), 1.0, 1e-12);
    EXPECT_NEAR(nmi(ba, bb), nmi(bb, ba), 1e-12);
    EXPECT_GT(nmi(ba, bb), 2 * nmi(ba, bc));
    std::vector<float> shorter(4999, 0.0f);
    const BinnedMatrix bs = bin_matrix(shorter.data(), shorter.size());
    EXPECT_NE(testing::error_message([&] { nmi(ba, bs); }).find("different sizes"),
              std::string::npos);
}

// get_matrix for a synthetic layer: expert e, kind k, n values; experts 1 and 3 share
// most of their values so their NMI stands out.
void synthetic_matrix(int expert, int kind, size_t n, std::vector<float>& out) {
    out.resize(n);
    std::mt19937_64 rng(static_cast<uint64_t>(1000 * kind + (expert == 3 ? 1 : expert)));
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (float& x : out) x = bf16_to_f32(f32_to_bf16(normal(rng)));
    if (expert == 3) {
        std::mt19937_64 noise(99);
        for (size_t i = 0; i < n; i += 4) out[i] += normal(noise);
    }
}

TEST(MoeitsNmi, LayerSimilarityIsTheWeightedSumOfPairNmis) {
    const int e = 5;
    const size_t n = 4000;
    const std::vector<double> weights{0.2, 0.8};
    int calls = 0;
    size_t last_done = 0;
    size_t last_total = 0;
    const auto get = [&](int expert, int kind, std::vector<float>& out) {
        ++calls;
        synthetic_matrix(expert, kind, n, out);
    };
    std::vector<double> m;
    {
        testing::ScopedThreads threads(2);
        m = layer_similarity(e, weights, get, [&](size_t done, size_t total) {
            EXPECT_GE(done, last_done);
            last_done = done;
            last_total = total;
        });
    }
    EXPECT_EQ(calls, e * 2);
    EXPECT_EQ(last_total, 20u);
    EXPECT_EQ(last_done, 20u);
    ASSERT_EQ(m.size(), 25u);
    std::vector<float> buf;
    for (int i = 0; i < e; ++i) {
        EXPECT_EQ(m[i * e + i], 0.0);
        for (int j = i + 1; j < e; ++j) {
            double expected = 0.0;
            for (int k = 0; k < 2; ++k) {
                synthetic_matrix(i, k, n, buf);
                const BinnedMatrix a = bin_matrix(buf.data(), n);
                synthetic_matrix(j, k, n, buf);
                const BinnedMatrix b = bin_matrix(buf.data(), n);
                expected += weights[k] * nmi(a, b);
            }
            EXPECT_DOUBLE_EQ(m[i * e + j], expected) << i << "," << j;  // FMA here, not there
            EXPECT_EQ(m[j * e + i], m[i * e + j]);
        }
    }
    // experts 1 and 3 are the redundant pair
    EXPECT_GT(m[1 * e + 3], 3 * m[0 * e + 2]);
    // the thread count does not change a bit
    testing::ScopedThreads one(1);
    EXPECT_EQ(layer_similarity(e, weights, get), m);
}

TEST(MoeitsNmi, LayerSimilarityRejectsBadInputAndPropagatesCancellation) {
    const auto get = [](int expert, int kind, std::vector<float>& out) {
        synthetic_matrix(expert, kind, expert == 2 ? 100 : 120, out);
    };
    EXPECT_NE(testing::error_message([&] { layer_similarity(4, {1.0}, get); }).find("same shape"),
              std::string::npos);
    EXPECT_NE(testing::error_message([&] { layer_similarity(0, {1.0}, get); }).find("n_experts"),
              std::string::npos);
    EXPECT_NE(testing::error_message([&] { layer_similarity(2, {}, get); }).find("weights"),
              std::string::npos);
    const auto good = [](int expert, int kind, std::vector<float>& out) {
        synthetic_matrix(expert, kind, 200, out);
    };
    EXPECT_NE(testing::error_message([&] {
                  layer_similarity(6, {1.0}, good, [](size_t done, size_t) {
                      if (done > 3) fail("cancelled by the caller");
                  });
              }).find("cancelled"),
              std::string::npos);
    // one expert: a 1×1 zero matrix
    EXPECT_EQ(layer_similarity(1, {1.0}, good), std::vector<double>{0.0});
}

}  // namespace
}  // namespace greenmoe::moeits

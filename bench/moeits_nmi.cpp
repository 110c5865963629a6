// Benchmark: MoEITS layer similarity at Qwen1.5-MoE and Mixtral sizes vs per-pair numpy.
//
// Usage: moeits_nmi [--experts N] [--skip-qwen] [--skip-mixtral] [--ref-pairs P]
//                   [--python PATH] [--script PATH] [--no-reference] [--cpp-reference]
// Defaults are the full sizes: Qwen1.5-MoE-A2.7B layer = 60 experts × 3 matrices of
// 1408×2048, Mixtral-8x7B layer = 8 experts × 3 matrices of 14336×4096. Matrices are
// synthetic Gaussian weights rounded to bf16, generated per (expert, kind) on demand inside
// get_matrix, as the real pipeline decodes them from a memory map. The reference time is
// measured in the same run on a sample of pairs with tools/bench/moeits_reference_pair.py
// (numpy, as the authors compute it; Python from --python, else $GREENMOE_PEER_PYTHON, else
// /usr/bin/python3), or, without Python/numpy, with a straightforward C++ per-pair
// implementation, and the output then says the numpy peer was skipped.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/core/half.h"
#include "greenmoe/io/npy.h"
#include "greenmoe/moeits/histogram.h"
#include "greenmoe/moeits/nmi.h"

namespace {

namespace fs = std::filesystem;
using greenmoe::moeits::BinnedMatrix;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds of all this process's threads (what contention on a busy machine does not inflate
// as much as wall time; OpenMP threads spin a little while idle, which it does include).
double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Standard normal quantiles at i/65536, for fast deterministic Gaussian samples: a hash picks
// a quantile cell and a point inside it; the two outer cells sample the tail exactly enough
// (Rayleigh tail beyond the cell), so maxima reach the ~5.5σ of 58M real Gaussians.
class GaussianTable {
  public:
    GaussianTable() : q_(kCells + 1, 0.0) {
        for (int i = 1; i < kCells; ++i) {
            const double p = static_cast<double>(i) / kCells;
            double lo = -10.0;
            double hi = 10.0;
            for (int it = 0; it < 100; ++it) {
                const double mid = 0.5 * (lo + hi);
                (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
            }
            q_[static_cast<size_t>(i)] = 0.5 * (lo + hi);
        }
    }
    float sample(uint64_t h) const {
        const auto cell = static_cast<int>(h >> 48);
        const double frac = static_cast<double>((h >> 16) & 0xffffffffull) * 0x1p-32;
        if (cell == 0 || cell == kCells - 1) {
            const double a = q_[kCells - 1];
            const double u = std::max(frac, 0x1p-32);
            const double x = std::sqrt(a * a - 2.0 * std::log(u));
            return static_cast<float>(cell == 0 ? -x : x);
        }
        const double lo = q_[static_cast<size_t>(cell)];
        const double hi = q_[static_cast<size_t>(cell) + 1];
        return static_cast<float>(lo + (hi - lo) * frac);
    }

  private:
    static constexpr int kCells = 65536;
    std::vector<double> q_;
};

// Synthetic expert weights: N(0, σ²) rounded to bf16, deterministic per (seed, expert, kind).
void generate(const GaussianTable& table, uint64_t seed, int expert, int kind, size_t n,
              std::vector<float>& out) {
    out.resize(n);
    const uint64_t base = splitmix64(seed ^ (static_cast<uint64_t>(expert) << 32) ^
                                     (static_cast<uint64_t>(kind) << 56));
    constexpr float kSigma = 0.02f;
    const auto sn = static_cast<int64_t>(n);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < sn; ++i) {
        const float x = table.sample(splitmix64(base + static_cast<uint64_t>(i))) * kSigma;
        out[static_cast<size_t>(i)] = greenmoe::bf16_to_f32(greenmoe::f32_to_bf16(x));
    }
}

struct Options {
    int experts = -1;  // override for both configurations
    bool qwen = true;
    bool mixtral = true;
    int ref_pairs = -1;  // -1: 3 for Qwen size, 1 for Mixtral size
    std::string python = "/usr/bin/python3";
    std::string script;
    bool reference = true;
    bool cpp_reference = false;
};

struct Config {
    std::string name;
    int experts;
    int kinds;
    int64_t rows;
    int64_t cols;
    int ref_pairs;
};

// A deliberately plain per-pair computation, for machines without numpy: every pair sorts
// both matrices for the percentiles, searches edges per element and fills a dense joint table.
double cpp_reference_pair(const std::vector<float>& a, const std::vector<float>& b) {
    const auto edges_of = [](const std::vector<float>& v) {
        std::vector<double> d(v.begin(), v.end());
        return greenmoe::moeits::auto_bin_edges(d.data(), d.size());
    };
    const auto ea = edges_of(a);
    const auto eb = edges_of(b);
    const auto bins = [](const greenmoe::moeits::BinEdges& e, const std::vector<float>& v) {
        std::vector<double> edges(static_cast<size_t>(e.n_bins) + 1);
        for (size_t i = 0; i < edges.size(); ++i) edges[i] = e.edge(static_cast<int64_t>(i));
        std::vector<uint32_t> idx(v.size());
        for (size_t i = 0; i < v.size(); ++i) {
            auto it = std::upper_bound(edges.begin(), edges.end(), static_cast<double>(v[i]));
            auto k = static_cast<int64_t>(it - edges.begin()) - 1;
            idx[i] = static_cast<uint32_t>(std::min<int64_t>(k, e.n_bins - 1));
        }
        return idx;
    };
    const auto ia = bins(ea, a);
    const auto ib = bins(eb, b);
    const auto na = static_cast<size_t>(ea.n_bins);
    const auto nb = static_cast<size_t>(eb.n_bins);
    std::vector<double> joint(na * nb, 0.0);
    std::vector<double> pa(na, 0.0);
    std::vector<double> pb(nb, 0.0);
    for (size_t i = 0; i < a.size(); ++i) {
        joint[ia[i] * nb + ib[i]] += 1.0;
        pa[ia[i]] += 1.0;
        pb[ib[i]] += 1.0;
    }
    const auto entropy = [&](const std::vector<double>& c) {
        double h = 0.0;
        for (double x : c) {
            if (x > 0) {
                const double p = x / static_cast<double>(a.size());
                h -= p * std::log(p);
            }
        }
        return h;
    };
    const double h_a = entropy(pa);
    const double h_b = entropy(pb);
    return (h_a + h_b - entropy(joint)) / std::sqrt(h_a * h_b);
}

struct ReferenceTiming {
    double seconds_per_pair = 0.0;  // the authors' computation (float32 input)
    double cpu_seconds_per_pair = 0.0;
    double seconds_per_pair_f64 = 0.0;
    double nmi = 0.0;
    double nmi_f64 = 0.0;
    std::string how;
    bool numpy = false;  // the authors' numpy ran (else the C++ fallback stood in)
};

std::string find_script(const Options& opt, const char* argv0) {
    if (!opt.script.empty()) return opt.script;
    const fs::path rel = fs::path("tools") / "bench" / "moeits_reference_pair.py";
    std::vector<fs::path> candidates{rel};
    std::error_code ec;
    fs::path exe = fs::canonical("/proc/self/exe", ec);
    if (ec) exe = fs::absolute(argv0);
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
         dir = dir.parent_path()) {
        candidates.push_back(dir / rel);
    }
    for (const auto& c : candidates) {
        if (fs::exists(c)) return c.string();
    }
    return {};
}

bool python_has_numpy(const std::string& python) {
    const std::string cmd = python + " -c 'import numpy, scipy' > /dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
}

std::string run_capture(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    std::array<char, 4096> buf{};
    while (fgets(buf.data(), static_cast<int>(buf.size()), p)) out += buf.data();
    pclose(p);
    return out;
}

ReferenceTiming time_reference(const Config& c, const GaussianTable& table, uint64_t seed,
                               const Options& opt, const std::string& script, double* our_nmi) {
    ReferenceTiming r;
    const size_t n = static_cast<size_t>(c.rows * c.cols);
    const bool use_python = !opt.cpp_reference && !script.empty() && python_has_numpy(opt.python);
    r.numpy = use_python;
    r.how = use_python ? "numpy " + opt.python + " " + script
            : opt.cpp_reference
                ? "C++ straightforward per-pair fallback (--cpp-reference)"
                : "C++ straightforward per-pair fallback (no numpy/scipy for " + opt.python + ")";
    std::vector<float> a;
    std::vector<float> b;
    double total = 0.0;
    double total_cpu = 0.0;
    double total64 = 0.0;
    for (int p = 0; p < c.ref_pairs; ++p) {
        const int kind = p % c.kinds;
        const int ea = p % c.experts;
        const int eb = (p + 1) % c.experts;
        generate(table, seed, ea, kind, n, a);
        generate(table, seed, eb, kind, n, b);
        {
            const BinnedMatrix ba = greenmoe::moeits::bin_matrix(a.data(), n);
            const BinnedMatrix bb = greenmoe::moeits::bin_matrix(b.data(), n);
            our_nmi[p] = greenmoe::moeits::nmi(ba, bb);
        }
        if (use_python) {
            const fs::path dir = fs::temp_directory_path();
            const std::string tag = std::to_string(::getpid()) + "_" + std::to_string(p);
            const fs::path pa = dir / ("moeits_bench_a_" + tag + ".npy");
            const fs::path pb = dir / ("moeits_bench_b_" + tag + ".npy");
            greenmoe::write_npy(pa, a.data(), {c.rows, c.cols});
            greenmoe::write_npy(pb, b.data(), {c.rows, c.cols});
            const std::string out =
                run_capture(opt.python + " " + script + " " + pa.string() + " " + pb.string());
            fs::remove(pa);
            fs::remove(pb);
            const auto line = out.find('{');
            greenmoe::check(line != std::string::npos, "reference script printed no result: {}",
                            out);
            const auto j = nlohmann::json::parse(out.substr(line));
            total += j["seconds_f32"].get<double>();
            total_cpu += j["cpu_seconds_f32"].get<double>();
            total64 += j["seconds_f64"].get<double>();
            r.nmi = j["nmi_f32"].get<double>();
            r.nmi_f64 = j["nmi_f64"].get<double>();
        } else {
            const auto t0 = Clock::now();
            const double c0 = process_cpu_seconds();
            r.nmi = r.nmi_f64 = cpp_reference_pair(a, b);
            total += seconds_since(t0);
            total_cpu += process_cpu_seconds() - c0;
            total64 = total;
        }
    }
    r.seconds_per_pair = total / c.ref_pairs;
    r.cpu_seconds_per_pair = total_cpu / c.ref_pairs;
    r.seconds_per_pair_f64 = total64 / c.ref_pairs;
    return r;
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string line;
    std::getline(in, line);
    return line;
}

void run_config(const Config& c, const Options& opt, const std::string& script) {
    const GaussianTable table;
    const uint64_t seed = 0x6d6f65697473ull;
    const size_t n = static_cast<size_t>(c.rows * c.cols);
    std::printf("\n== %s: %d experts × %d kinds × %lld×%lld (%.1f M elements per matrix)\n",
                c.name.c_str(), c.experts, c.kinds, static_cast<long long>(c.rows),
                static_cast<long long>(c.cols), static_cast<double>(n) / 1e6);
    std::printf("load average before: %s\n", load_average().c_str());
    std::fflush(stdout);

    double gen_seconds = 0.0;
    double gen_cpu = 0.0;
    const auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    const std::vector<double> weights(static_cast<size_t>(c.kinds), 1.0 / c.kinds);
    const std::vector<double> m = greenmoe::moeits::layer_similarity(
        c.experts, weights, [&](int expert, int kind, std::vector<float>& out) {
            const auto g0 = Clock::now();
            const double gc0 = process_cpu_seconds();
            generate(table, seed, expert, kind, n, out);
            gen_seconds += seconds_since(g0);
            gen_cpu += process_cpu_seconds() - gc0;
        });
    const double total = seconds_since(t0);
    const double ours = total - gen_seconds;
    const double ours_cpu = process_cpu_seconds() - c0 - gen_cpu;
    double mean_off = 0.0;
    for (int i = 0; i < c.experts; ++i) {
        for (int j = 0; j < c.experts; ++j) {
            if (i != j) mean_off += m[static_cast<size_t>(i * c.experts + j)];
        }
    }
    if (c.experts > 1) mean_off /= static_cast<double>(c.experts) * (c.experts - 1);
    const long pairs = static_cast<long>(c.experts) * (c.experts - 1) / 2 * c.kinds;
    std::printf(
        "greenmoe layer_similarity: %.2f s per layer (%.2f s of it generating the "
        "matrices, so %.2f s binning + NMI), %ld pair-NMIs, %.1f ms per pair-NMI, "
        "%d threads; mean off-diagonal M = %.6f\n",
        total, gen_seconds, ours, pairs, 1e3 * ours / static_cast<double>(pairs),
        omp_get_max_threads(), mean_off);
    std::printf(
        "CPU time of binning + NMI: %.2f s (%.0f%% of %d threads' wall time: below 100%% "
        "means the machine was busy)\n",
        ours_cpu, 100.0 * ours_cpu / (ours * omp_get_max_threads()), omp_get_max_threads());
    std::printf("load average after: %s\n", load_average().c_str());
    std::fflush(stdout);

    if (!opt.reference || c.ref_pairs <= 0 || c.experts < 2) return;
    std::vector<double> our_nmi(static_cast<size_t>(c.ref_pairs), 0.0);
    const ReferenceTiming r = time_reference(c, table, seed, opt, script, our_nmi.data());
    const double ref_layer = r.seconds_per_pair * static_cast<double>(pairs);
    const double ref_layer64 = r.seconds_per_pair_f64 * static_cast<double>(pairs);
    std::printf(
        "reference (%s): %.3f s per pair-NMI on float32 input (%.3f s on float64), "
        "measured on %d pair(s); extrapolated %.0f s (%.1f min) per layer\n",
        r.how.c_str(), r.seconds_per_pair, r.seconds_per_pair_f64, c.ref_pairs, ref_layer,
        ref_layer / 60.0);
    std::printf(
        "last sampled pair: NMI greenmoe %.12f, reference float64 %.12f (diff %.1e), "
        "reference float32 %.12f\n",
        our_nmi.back(), r.nmi_f64, std::abs(our_nmi.back() - r.nmi_f64), r.nmi);
    if (r.numpy) {
        std::printf(
            "SPEED-UP %s: %.1fx over the reference's float32 per-pair numpy (%.1fx over "
            "float64), greenmoe %.2f s vs %.0f s per layer\n",
            c.name.c_str(), ref_layer / ours, ref_layer64 / ours, ours, ref_layer);
    } else {
        // The authors' numpy did not run: the ratio is to the stand-in only.
        std::printf(
            "SPEED-UP %s: %.1fx over the C++ per-pair fallback (numpy peer: skipped), "
            "greenmoe %.2f s vs %.0f s per layer\n",
            c.name.c_str(), ref_layer / ours, ours, ref_layer);
    }
    const double ref_cpu_layer = r.cpu_seconds_per_pair * static_cast<double>(pairs);
    std::printf(
        "CPU-time ratio %s: %.1fx (reference %.0f CPU s per layer, greenmoe %.1f CPU s "
        "on %d threads)\n",
        c.name.c_str(), ref_cpu_layer / ours_cpu, ref_cpu_layer, ours_cpu, omp_get_max_threads());
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    bool python_given = false;  // --python wins over $GREENMOE_PEER_PYTHON
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "moeits_nmi: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--experts") {
            opt.experts = std::stoi(value());
        } else if (a == "--skip-qwen") {
            opt.qwen = false;
        } else if (a == "--skip-mixtral") {
            opt.mixtral = false;
        } else if (a == "--ref-pairs") {
            opt.ref_pairs = std::stoi(value());
        } else if (a == "--python") {
            opt.python = value();
            python_given = true;
        } else if (a == "--script") {
            opt.script = value();
        } else if (a == "--no-reference") {
            opt.reference = false;
        } else if (a == "--cpp-reference") {
            opt.cpp_reference = true;
        } else {
            std::fprintf(stderr,
                         "usage: moeits_nmi [--experts N] [--skip-qwen] [--skip-mixtral] "
                         "[--ref-pairs P] [--python PATH] [--script PATH] [--no-reference] "
                         "[--cpp-reference]\n");
            return 2;
        }
    }
    if (const char* p = std::getenv("GREENMOE_PEER_PYTHON"); p && *p && !python_given) {
        opt.python = p;
    }
    const std::string script = find_script(opt, argv[0]);
    std::printf("moeits_nmi: OpenMP threads %d, load average %s\n", omp_get_max_threads(),
                load_average().c_str());
    try {
        if (opt.qwen) {
            run_config({"Qwen1.5-MoE-A2.7B layer", opt.experts > 0 ? opt.experts : 60, 3, 1408,
                        2048, opt.ref_pairs >= 0 ? opt.ref_pairs : 3},
                       opt, script);
        }
        if (opt.mixtral) {
            run_config({"Mixtral-8x7B layer", opt.experts > 0 ? opt.experts : 8, 3, 14336, 4096,
                        opt.ref_pairs >= 0 ? opt.ref_pairs : 1},
                       opt, script);
        }
    } catch (const greenmoe::Error& e) {
        std::fprintf(stderr, "moeits_nmi: %s\n", e.what());
        return 1;
    }
    return 0;
}

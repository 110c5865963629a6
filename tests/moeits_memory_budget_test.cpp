// layer_similarity under a memory budget: grouped comparison is bit-identical to the
// unlimited one, holds what it says, re-reads what its schedule implies; the budget planner.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/io/npy.h"
#include "greenmoe/moeits/model_adapter.h"
#include "greenmoe/moeits/nmi.h"
#include "greenmoe/moeits/simplify.h"
#include "moeits_test_support.h"
#include "test_support.h"

namespace greenmoe::moeits {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A synthetic layer: every expert's matrices of each kind, kept in memory. Experts share a
// few common components in different amounts, so that their NMIs differ.
struct SyntheticLayer {
    int n_experts = 0;
    std::vector<size_t> sizes;                          // per kind
    std::vector<std::vector<std::vector<float>>> data;  // [kind][expert]

    SyntheticLayer(int e, std::vector<size_t> kind_sizes, uint64_t seed)
        : n_experts(e), sizes(std::move(kind_sizes)) {
        std::mt19937_64 rng(seed);
        std::normal_distribution<float> normal(0.0f, 0.02f);
        for (const size_t n : sizes) {
            std::vector<std::vector<float>> common(3, std::vector<float>(n));
            for (auto& c : common) {
                for (float& x : c) x = normal(rng);
            }
            std::vector<std::vector<float>> experts;
            for (int ex = 0; ex < e; ++ex) {
                std::vector<float> v(n);
                const auto& c = common[static_cast<size_t>(ex % 3)];
                const float share = 0.2f * static_cast<float>(ex % 4);
                for (size_t i = 0; i < n; ++i) v[i] = share * c[i] + normal(rng);
                experts.push_back(std::move(v));
            }
            data.push_back(std::move(experts));
        }
    }

    std::vector<double> weights() const {
        return std::vector<double>(sizes.size(), 1.0 / static_cast<double>(sizes.size()));
    }
};

struct SimilarityRun {
    std::vector<double> m;
    std::vector<std::pair<int, int>> calls;  // (expert, kind) in call order
    std::vector<size_t> held;                // what on_held reported
    size_t last_done = 0, last_total = 0;
    bool progress_monotone = true;
};

SimilarityRun run_similarity(const SyntheticLayer& layer, size_t max_binned, int max_threads = 0) {
    SimilarityRun r;
    SimilarityLimits limits;
    limits.max_binned = max_binned;
    limits.max_threads = max_threads;
    limits.on_held = [&](size_t held) { r.held.push_back(held); };
    r.m = layer_similarity(
        layer.n_experts, layer.weights(),
        [&](int expert, int kind, std::vector<float>& out) {
            r.calls.emplace_back(expert, kind);
            out = layer.data[static_cast<size_t>(kind)][static_cast<size_t>(expert)];
        },
        [&](size_t done, size_t total) {
            r.progress_monotone = r.progress_monotone && done >= r.last_done;
            r.last_done = done;
            r.last_total = total;
        },
        limits);
    return r;
}

// The documented schedule, written out independently: group 0, then for each group a the
// groups from the last down to a+1.
std::vector<std::pair<int, int>> expected_calls(int e, int kinds, size_t max_binned) {
    const int g = (max_binned == 0 || max_binned >= static_cast<size_t>(e))
                      ? e
                      : static_cast<int>(max_binned / 2);
    const int groups = (e + g - 1) / g;
    std::vector<std::pair<int, int>> calls;
    const auto add_group = [&](int b, int kind) {
        for (int ex = b * g; ex < std::min(e, (b + 1) * g); ++ex) calls.emplace_back(ex, kind);
    };
    for (int kind = 0; kind < kinds; ++kind) {
        add_group(0, kind);
        for (int a = 0; a < groups; ++a) {
            for (int b = groups - 1; b > a; --b) add_group(b, kind);
        }
    }
    return calls;
}

TEST(MoeitsMemoryBudget, GroupedComparisonIsBitIdentical) {
    testing::ScopedThreads threads(2);
    const std::vector<SyntheticLayer> layers = {
        SyntheticLayer(7, {3000, 5000}, 11),
        // 70000 bfloat16-exact values take bin_matrix's table-lookup path.
        SyntheticLayer(9, {2500, 4000, 70000}, 12),
    };
    for (const SyntheticLayer& layer : layers) {
        const int e = layer.n_experts;
        const int kinds = static_cast<int>(layer.sizes.size());
        SCOPED_TRACE(fmt::format("{} experts", e));
        const SimilarityRun full = run_similarity(layer, 0);
        ASSERT_EQ(full.m.size(), static_cast<size_t>(e * e));
        EXPECT_EQ(full.calls, expected_calls(e, kinds, 0));
        EXPECT_EQ(*std::max_element(full.held.begin(), full.held.end()), static_cast<size_t>(e));
        // The matrix is not trivial: off-diagonal values differ.
        EXPECT_NE(full.m[0 * e + 1], full.m[0 * e + 2]);
        for (const size_t max_binned :
             {size_t{2}, size_t{3}, size_t{4}, size_t{6}, static_cast<size_t>(e - 1),
              static_cast<size_t>(e), size_t{100}}) {
            SCOPED_TRACE(fmt::format("max_binned {}", max_binned));
            const SimilarityRun r = run_similarity(layer, max_binned);
            EXPECT_EQ(r.m, full.m);  // every double, bit for bit
            EXPECT_EQ(r.calls, expected_calls(e, kinds, max_binned));
            const int g = max_binned >= static_cast<size_t>(e) ? e : int(max_binned / 2);
            const int groups = (e + g - 1) / g;
            // Group b is binned max(1, b) times per kind.
            size_t per_kind = 0;
            for (int b = 0; b < groups; ++b) {
                per_kind += static_cast<size_t>(std::min(e, (b + 1) * g) - b * g) *
                            static_cast<size_t>(std::max(1, b));
            }
            EXPECT_EQ(r.calls.size(), per_kind * static_cast<size_t>(kinds));
            if (groups > 1) {
                EXPECT_GT(r.calls.size(), static_cast<size_t>(e * kinds));
            }
            // What was held at most: two groups, never more than the limit.
            const size_t peak = *std::max_element(r.held.begin(), r.held.end());
            EXPECT_EQ(peak, groups > 1 ? static_cast<size_t>(2 * g) : static_cast<size_t>(e));
            EXPECT_LE(peak, std::min(max_binned, static_cast<size_t>(e)));
            EXPECT_TRUE(r.progress_monotone);
            EXPECT_EQ(r.last_total, static_cast<size_t>(kinds * e * (e - 1) / 2));
            EXPECT_EQ(r.last_done, r.last_total);
        }
        // Fewer threads, one at a time included, change nothing either.
        EXPECT_EQ(run_similarity(layer, 4, 1).m, full.m);
        EXPECT_EQ(run_similarity(layer, 0, 1).m, full.m);
    }
}

TEST(MoeitsMemoryBudget, RejectsBadLimits) {
    const SyntheticLayer layer(4, {500}, 3);
    const auto get = [&](int expert, int kind, std::vector<float>& out) {
        out = layer.data[static_cast<size_t>(kind)][static_cast<size_t>(expert)];
    };
    SimilarityLimits one;
    one.max_binned = 1;
    const std::string msg =
        testing::error_message([&] { layer_similarity(4, {1.0}, get, {}, one); });
    EXPECT_NE(msg.find("max_binned"), std::string::npos) << msg;
    SimilarityLimits negative;
    negative.max_threads = -1;
    EXPECT_NE(testing::error_message([&] {
                  layer_similarity(4, {1.0}, get, {}, negative);
              }).find("max_threads"),
              std::string::npos);
    // Re-read matrices are checked too: an expert whose shape changes on a second read.
    int reads = 0;
    SimilarityLimits two;
    two.max_binned = 2;
    const auto changing = [&](int expert, int kind, std::vector<float>& out) {
        get(expert, kind, out);
        if (expert == 3 && ++reads > 1) out.pop_back();
    };
    EXPECT_NE(testing::error_message([&] {
                  layer_similarity(4, {1.0}, changing, {}, two);
              }).find("same shape"),
              std::string::npos);
}

TEST(MoeitsMemoryBudget, PeakEstimateAndPlan) {
    const int threads = 16;
    // Mixtral-8x7B: 14336×4096 bfloat16 matrices, 8 experts.
    const MatrixFootprint mixtral{size_t{14336} * 4096, StoredFloat::bf16};
    const uint64_t full = similarity_peak_bytes(mixtral, 8, {}, threads);
    // 8 binned matrices (2 bytes an element) and 16 threads' pair scratch at least, and
    // within the 4 GB default.
    EXPECT_GT(full, 8 * 2 * mixtral.n + 16 * 2 * mixtral.n);
    EXPECT_LT(full, 4'000'000'000ULL);
    const auto fits = plan_similarity(4'000'000'000ULL, mixtral, 8, threads);
    ASSERT_TRUE(fits.has_value());
    EXPECT_EQ(fits->max_binned, 0u);
    EXPECT_EQ(fits->max_threads, 0);

    // Less memory for the same layer: a plan that fits, groups or fewer threads.
    for (const uint64_t budget : {2'000'000'000ULL, 1'000'000'000ULL}) {
        SCOPED_TRACE(budget);
        const auto plan = plan_similarity(budget, mixtral, 8, threads);
        ASSERT_TRUE(plan.has_value());
        EXPECT_TRUE(plan->max_binned != 0 || plan->max_threads != 0);
        EXPECT_LE(similarity_peak_bytes(mixtral, 8, *plan, threads), budget);
    }
    // The least it can run with: two matrices, one thread; a byte less is refused.
    SimilarityLimits least;
    least.max_binned = 2;
    least.max_threads = 1;
    const uint64_t minimum = similarity_peak_bytes(mixtral, 8, least, threads);
    EXPECT_TRUE(plan_similarity(minimum, mixtral, 8, threads).has_value());
    EXPECT_FALSE(plan_similarity(minimum - 1, mixtral, 8, threads).has_value());

    // Grouping and fewer threads lower the estimate; wide (f32) matrices cost more than
    // 16-bit ones, and binning bfloat16 needs no per-element scratch.
    const MatrixFootprint qwen{size_t{1408} * 2048, StoredFloat::bf16};
    uint64_t previous = similarity_peak_bytes(qwen, 60, {}, threads);
    for (const size_t m : {size_t{40}, size_t{20}, size_t{8}, size_t{2}}) {
        SimilarityLimits l;
        l.max_binned = m;
        const uint64_t peak = similarity_peak_bytes(qwen, 60, l, threads);
        EXPECT_LT(peak, previous) << m;
        previous = peak;
    }
    SimilarityLimits two_threads;
    two_threads.max_threads = 2;
    EXPECT_LT(similarity_peak_bytes(qwen, 60, two_threads, threads),
              similarity_peak_bytes(qwen, 60, {}, threads));
    const MatrixFootprint qwen_f16{qwen.n, StoredFloat::f16};
    const MatrixFootprint qwen_f32{qwen.n, StoredFloat::wide};
    EXPECT_LT(similarity_peak_bytes(qwen, 60, {}, threads),
              similarity_peak_bytes(qwen_f16, 60, {}, threads));
    EXPECT_LT(similarity_peak_bytes(qwen_f16, 60, {}, threads),
              similarity_peak_bytes(qwen_f32, 60, {}, threads));

    // Every plan for a range of budgets fits its budget, and more memory never plans a
    // schedule that holds fewer matrices on as many threads.
    const uint64_t qwen_min = similarity_peak_bytes(qwen, 60, least, threads);
    const uint64_t qwen_full = similarity_peak_bytes(qwen, 60, {}, threads);
    EXPECT_FALSE(plan_similarity(qwen_min - 1, qwen, 60, threads).has_value());
    for (uint64_t budget = qwen_min; budget < qwen_full; budget += (qwen_full - qwen_min) / 37) {
        const auto plan = plan_similarity(budget, qwen, 60, threads);
        ASSERT_TRUE(plan.has_value()) << budget;
        EXPECT_LE(similarity_peak_bytes(qwen, 60, *plan, threads), budget);
        EXPECT_NE(plan->max_binned, 1u);
        EXPECT_NE(plan->max_binned % 2, 1u);  // an odd limit would waste one
    }
}

// Footprint of a layer as layer_similarities sees it, for the F32 fixtures.
MatrixFootprint f32_footprint(const MoeModel& model, const MoeLayer& layer) {
    MatrixFootprint f;
    for (size_t k = 0; k < layer.kind_names.size(); ++k) {
        f.n = std::max(f.n, static_cast<size_t>(model.matrix_numel(layer, static_cast<int>(k))));
    }
    f.stored = StoredFloat::wide;
    return f;
}

std::vector<char> file_bytes(const fs::path& path) {
    const std::string s = testing::read_text_file(path);
    return {s.begin(), s.end()};
}

TEST(MoeitsMemoryBudget, SimplifyUnderASmallBudgetMatchesTheDefault) {
    TempDir tmp;
    const fs::path mixtral = testing::hf_fixture_folder(tmp, "tiny_mixtral");
    GptConfig cfg = testing::tiny_moe_config("olnn");
    cfg.n_experts = 8;
    const fs::path greenmoe =
        testing::write_greenmoe_model(tmp / "greenmoe" / "model.safetensors", cfg).parent_path();
    for (const fs::path& model_dir : {mixtral, greenmoe}) {
        SCOPED_TRACE(model_dir.filename().string());
        const MoeModel model = MoeModel::open(model_dir);
        for (const auto& layer : model.layers()) {
            for (const auto& k : layer.kind_tensors) {
                const std::string name = layer.stacked ? k : layer.expert_tensor(0, k);
                ASSERT_EQ(model.tensors().get(name).dtype, DType::F32) << name;
            }
        }
        // The largest budget any layer needs with two binned matrices at a time: every
        // layer has to be compared in groups to fit it.
        uint64_t budget = 0;
        for (const auto& layer : model.layers()) {
            SimilarityLimits two;
            two.max_binned = 2;
            budget = std::max(
                budget, similarity_peak_bytes(f32_footprint(model, layer), layer.n_experts, two));
        }
        for (const auto& layer : model.layers()) {
            const MatrixFootprint f = f32_footprint(model, layer);
            ASSERT_LT(budget, similarity_peak_bytes(f, layer.n_experts, {}));
            const auto plan = plan_similarity(budget, f, layer.n_experts);
            ASSERT_TRUE(plan.has_value());
            EXPECT_GE(plan->max_binned, 2u);
            EXPECT_LT(plan->max_binned, static_cast<size_t>(layer.n_experts));
        }

        const auto options = [&](const fs::path& out, uint64_t memory_budget) {
            SimplifyOptions o;
            o.model = model_dir;
            o.out = out;
            o.keep = 3;
            o.memory_budget = memory_budget;
            o.show_progress = false;
            o.log = [](const std::string&) {};
            return o;
        };
        const SimplifyResult by_default = simplify_model(options(tmp / "default", 4'000'000'000));
        const SimplifyResult grouped = simplify_model(options(tmp / "grouped", budget));
        ASSERT_EQ(grouped.layers.size(), by_default.layers.size());
        EXPECT_EQ(grouped.nmi_layers_computed, static_cast<int>(model.layers().size()));
        for (size_t i = 0; i < grouped.layers.size(); ++i) {
            EXPECT_EQ(grouped.layers[i].kept, by_default.layers[i].kept);
            const std::string npy = fmt::format("layer_{}.npy", grouped.layers[i].layer);
            const auto a = file_bytes(tmp / "default" / "nmi" / npy);
            EXPECT_FALSE(a.empty());
            EXPECT_EQ(file_bytes(tmp / "grouped" / "nmi" / npy), a) << npy;
        }
        EXPECT_EQ(file_bytes(tmp / "grouped" / "model.safetensors"),
                  file_bytes(tmp / "default" / "model.safetensors"));

        // Below what two matrices on one thread need, the option is named.
        uint64_t least = 0;
        for (const auto& layer : model.layers()) {
            SimilarityLimits l;
            l.max_binned = 2;
            l.max_threads = 1;
            least = std::max(
                least, similarity_peak_bytes(f32_footprint(model, layer), layer.n_experts, l));
        }
        const std::string msg =
            testing::error_message([&] { simplify_model(options(tmp / "refused", least - 1)); });
        EXPECT_NE(msg.find("--memory-budget"), std::string::npos) << msg;
        fs::remove_all(tmp / "default");
        fs::remove_all(tmp / "grouped");
    }
}

}  // namespace
}  // namespace greenmoe::moeits

// Tests of the MoEITS pruning rule, target modes and NMI→prune on tiny HF models vs numpy.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/io/safetensors.h"
#include "greenmoe/moeits/nmi.h"
#include "greenmoe/moeits/prune_rule.h"
#include "test_support.h"

namespace greenmoe::moeits {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path fixture_dir() {
    return fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "moeits";
}

json load_json(const fs::path& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "missing " << path;
    return json::parse(in);
}

TEST(MoeitsPrune, MeanIqrAndPercentilesAreNumpysBitForBit) {
    const json p = load_json(fixture_dir() / "prune_cases.json");
    for (const auto& c : p["matrices"]) {
        SCOPED_TRACE(c["name"].get<std::string>());
        const auto m = c["M"].get<std::vector<double>>();
        EXPECT_EQ(numpy_mean(m), c["mean"].get<double>());
        EXPECT_EQ(iqr_linear(m), c["iqr"].get<double>());
        EXPECT_EQ(percentile_linear(m, 25), c["p25"].get<double>());
        EXPECT_EQ(percentile_linear(m, 75), c["p75"].get<double>());
        EXPECT_EQ(percentile_linear(m, 10), c["p10"].get<double>());
        EXPECT_EQ(percentile_linear(m, 33.3), c["p33_3"].get<double>());
        EXPECT_EQ(percentile_linear(m, 0), c["p0"].get<double>());
        EXPECT_EQ(percentile_linear(m, 100), c["p100"].get<double>());
    }
}

TEST(MoeitsPrune, RuleMatchesTheNumpyReferenceOnEveryMatrixAndFactor) {
    const json p = load_json(fixture_dir() / "prune_cases.json");
    int runs = 0;
    int pruned_runs = 0;
    int stopped_runs = 0;
    for (const auto& c : p["matrices"]) {
        const auto m = c["M"].get<std::vector<double>>();
        const int e = c["n_experts"].get<int>();
        for (const auto& r : c["runs"]) {
            const double factor = r["factor"].get<double>();
            const int min_keep = r["min_keep"].get<int>();
            SCOPED_TRACE(c["name"].get<std::string>() + " factor " + std::to_string(factor) +
                         " min_keep " + std::to_string(min_keep));
            const PruneResult got = prune_layer(m, e, factor, min_keep);
            EXPECT_EQ(got.kept, r["kept"].get<std::vector<int>>());
            EXPECT_EQ(got.threshold, r["threshold"].get<double>());
            EXPECT_EQ(got.stopped_at_min_keep, r["stopped_at_min_keep"].get<bool>());
            EXPECT_EQ(got.factor, factor);
            ++runs;
            pruned_runs += static_cast<int>(got.kept.size()) < e;
            stopped_runs += got.stopped_at_min_keep;
        }
    }
    EXPECT_GE(runs, 200);
    EXPECT_GE(pruned_runs, 50);
    EXPECT_GE(stopped_runs, 5);
}

TEST(MoeitsPrune, TiesBreakAsTheReferenceDoes) {
    // (0,1) and (2,3) both hold the maximum 0.5 (argmax takes the first in row-major order),
    // and every row has the same mean, so on the first step b goes.
    std::vector<double> m(16, 0.0);
    const auto set = [&](int a, int b, double v) { m[a * 4 + b] = m[b * 4 + a] = v; };
    set(0, 1, 0.5);
    set(2, 3, 0.5);
    set(0, 2, 0.125);
    set(1, 3, 0.125);
    // mean = 2·(0.5+0.5+0.125+0.125)/16 = 0.15625; all rows have the same mean.
    const PruneResult r = prune_layer(m, 4, 0.0, 0);
    // step 1: argmax (0,1), equal means → remove 1. M over {0,2,3}: (0,2)=.125, (2,3)=.5.
    // step 2: argmax (2,3) in the reduced matrix, row 2 = [.125, 0, .5], row 3 = [0, .5, 0]:
    // mean(row 2) > mean(row 3) → remove 2. Left {0, 3}: max 0 ≤ th → stop.
    EXPECT_EQ(r.kept, (std::vector<int>{0, 3}));
    EXPECT_EQ(r.threshold, 0.15625);
}

TEST(MoeitsPrune, MinKeepStopsPruningAndSaysSo) {
    std::vector<double> m(9, 0.9);
    for (int i = 0; i < 3; ++i) m[i * 3 + i] = 0.0;
    // th = mean + factor·IQR with a negative factor: the reference removes every expert.
    EXPECT_TRUE(prune_layer(m, 3, -10.0, 0).kept.empty());
    const PruneResult r = prune_layer(m, 3, -10.0, 2);
    EXPECT_EQ(r.kept.size(), 2u);
    EXPECT_TRUE(r.stopped_at_min_keep);
    const PruneResult none = prune_layer(m, 3, 10.0, 2);
    EXPECT_EQ(none.kept.size(), 3u);
    EXPECT_FALSE(none.stopped_at_min_keep);
}

TEST(MoeitsPrune, KeepModeReachesTheClosestReachableCount) {
    const json p = load_json(fixture_dir() / "prune_cases.json");
    int checked = 0;
    for (const auto& c : p["matrices"]) {
        const auto m = c["M"].get<std::vector<double>>();
        const int e = c["n_experts"].get<int>();
        for (int min_keep : {0, 2}) {
            const json& reach = c["reachable"][std::to_string(min_keep)];
            for (int keep = 1; keep <= e + 1; ++keep) {
                SCOPED_TRACE(c["name"].get<std::string>() + " keep " + std::to_string(keep) +
                             " min_keep " + std::to_string(min_keep));
                // closest reachable count to max(keep, min_keep), ties to the larger count
                const int target = std::min(std::max(keep, min_keep), e);
                int best = -1;
                for (const auto& [count, kept] : reach.items()) {
                    const int k = std::stoi(count);
                    if (best < 0 || std::abs(k - target) < std::abs(best - target) ||
                        (std::abs(k - target) == std::abs(best - target) && k > best)) {
                        best = k;
                    }
                }
                const PruneResult r = prune_layer_to_keep(m, e, keep, min_keep);
                EXPECT_EQ(r.kept, reach[std::to_string(best)].get<std::vector<int>>());
                // the result is the rule at the returned factor
                const PruneResult again = prune_layer(m, e, r.factor, min_keep);
                EXPECT_EQ(again.kept, r.kept);
                EXPECT_GE(static_cast<int>(r.kept.size()), std::min(min_keep, e));
                ++checked;
            }
        }
    }
    EXPECT_GE(checked, 300);
}

TEST(MoeitsPrune, ReductionModeFindsTheLeastPruningFactorThatMeetsTheTarget) {
    const json p = load_json(fixture_dir() / "prune_cases.json");
    const json& red = p["reduction"];
    std::vector<std::vector<double>> layers;
    for (const auto& l : red["layers"]) layers.push_back(l.get<std::vector<double>>());
    const auto counts = red["n_experts"].get<std::vector<int>>();
    int checked = 0;
    for (const auto& t : red["targets"]) {
        const double target = t["target"].get<double>();
        const int min_keep = t["min_keep"].get<int>();
        SCOPED_TRACE("target " + std::to_string(target) + " min_keep " + std::to_string(min_keep));
        const double f = factor_for_reduction(layers, counts, target, min_keep);
        int removed = 0;
        for (int r : removed_per_layer(layers, counts, f, min_keep)) removed += r;
        EXPECT_EQ(removed, t["removed"].get<int>());
        // least pruning: just past the next breakpoint the count falls short of the target,
        // and from f up to that breakpoint it does not change
        if (!t["factor_above"].is_null()) {
            EXPECT_LT(t["removed_above"].get<int>(), t["wanted"].get<int>());
            int above = 0;
            for (int r :
                 removed_per_layer(layers, counts, t["factor_above"].get<double>(), min_keep)) {
                above += r;
            }
            EXPECT_EQ(above, t["removed_above"].get<int>());
        }
        if (!t["factor_upper"].is_null()) {
            const double upper = t["factor_upper"].get<double>();
            EXPECT_LT(f, upper);
            for (int s = 1; s < 64; ++s) {
                const double g = f + (upper - f) * s / 64.0;
                int removed_g = 0;
                for (int r : removed_per_layer(layers, counts, g, min_keep)) removed_g += r;
                EXPECT_EQ(removed_g, removed) << "at factor " << g;
            }
        }
        ++checked;
    }
    EXPECT_EQ(checked, 16);
}

TEST(MoeitsPrune, RejectsBadInput) {
    const std::vector<double> m{0.0, 0.5, 0.5, 0.0};
    EXPECT_NE(testing::error_message([&] { prune_layer(m, 3, 1.0, 0); }).find("3×3"),
              std::string::npos);
    const std::vector<double> bad{0.0, NAN, NAN, 0.0};
    EXPECT_NE(testing::error_message([&] { prune_layer(bad, 2, 1.0, 0); }).find("(0, 1)"),
              std::string::npos);
    EXPECT_NE(testing::error_message([&] { prune_layer_to_keep(m, 2, 0, 0); }).find("keep"),
              std::string::npos);
    EXPECT_NE(
        testing::error_message([&] { factor_for_reduction({m}, {2}, 1.5, 0); }).find("fraction"),
        std::string::npos);
    EXPECT_NE(testing::error_message([&] {
                  factor_for_reduction({m}, {2, 3}, 0.5, 0);
              }).find("expert counts"),
              std::string::npos);
}

// The whole path on real (tiny) Hugging Face checkpoints: tensors read through
// SafetensorsFile, M from layer_similarity, kept experts from prune_layer, against numpy.
TEST(MoeitsHfFixtures, LayerSimilarityAndPruningMatchNumpy) {
    const json hf = load_json(fixture_dir() / "hf_fixture_pruning.json");
    const fs::path dir = testing::shared_data() / "hf-fixtures";
    int layers_checked = 0;
    int pruned = 0;
    for (const auto& [model, entry] : hf.items()) {
        const SafetensorsFile file = SafetensorsFile::open(dir / (model + ".safetensors"));
        const json config = load_json(dir / (model + "_config.json"));
        const int top_k = config["num_experts_per_tok"].get<int>();
        EXPECT_EQ(entry["num_experts_per_tok"].get<int>(), top_k);
        for (const auto& layer : entry["layers"]) {
            const std::string prefix = layer["tensor_prefix"];
            SCOPED_TRACE(model + " " + prefix);
            const int e = layer["n_experts"].get<int>();
            const auto kinds = layer["kinds"].get<std::vector<std::string>>();
            const auto weights = layer["weights"].get<std::vector<double>>();
            const std::vector<double> m =
                layer_similarity(e, weights, [&](int expert, int kind, std::vector<float>& out) {
                    out = file.read_f32(prefix + ".experts." + std::to_string(expert) + "." +
                                        kinds[static_cast<size_t>(kind)] + ".weight");
                });
            const auto expected = layer["M"].get<std::vector<double>>();
            ASSERT_EQ(m.size(), expected.size());
            for (size_t i = 0; i < m.size(); ++i) EXPECT_NEAR(m[i], expected[i], 1e-9) << i;
            for (const auto& [factor, kept] : layer["kept"].items()) {
                const double f = std::stod(factor);
                EXPECT_EQ(prune_layer(m, e, f, 0).kept, kept.get<std::vector<int>>()) << factor;
                const PruneResult guarded = prune_layer(m, e, f, top_k);
                EXPECT_EQ(guarded.kept, layer["kept_with_min_keep"][factor].get<std::vector<int>>())
                    << factor;
                EXPECT_EQ(guarded.stopped_at_min_keep,
                          layer["stopped_at_min_keep"][factor].get<bool>());
                pruned += static_cast<int>(kept.size()) < e;
            }
            ++layers_checked;
        }
    }
    EXPECT_EQ(layers_checked, 5);  // Mixtral 2, Qwen3-MoE 2, DeepSeek-V2 1 (layer 0 is dense)
    EXPECT_GE(pruned, 10);
}

}  // namespace
}  // namespace greenmoe::moeits

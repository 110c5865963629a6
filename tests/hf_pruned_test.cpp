// A model that `greenmoe simplify` pruned runs like the original with the removed experts
// masked out of routing: the identity that proves pruning and loading agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/hf/hf_model.h"
#include "greenmoe/moeits/simplify.h"
#include "moeits_test_support.h"
#include "test_support.h"

namespace greenmoe::hf {
namespace {

namespace fs = std::filesystem;
using greenmoe::testing::TempDir;

void expect_pruned_equals_masked(const fs::path& original, int keep, moeits::Criterion criterion,
                                 const TempDir& tmp) {
    moeits::SimplifyOptions o;
    o.model = original;
    o.out = tmp / ("out_keep" + std::to_string(keep));
    o.keep = keep;
    o.criterion = criterion;
    o.seed = 3;
    o.show_progress = false;
    o.log = [](const std::string&) {};
    const moeits::SimplifyResult result = moeits::simplify_model(o);

    HfModel masked = HfModel::load(original);
    const HfModel pruned = HfModel::load(o.out);
    std::vector<std::vector<bool>> mask(static_cast<size_t>(masked.config().num_layers));
    for (const auto& layer : result.layers) {
        auto& m = mask[static_cast<size_t>(layer.layer)];
        m.assign(static_cast<size_t>(layer.n_experts), true);
        for (const int e : layer.kept) m[static_cast<size_t>(e)] = false;
        EXPECT_EQ(pruned.config().layers[static_cast<size_t>(layer.layer)].n_experts,
                  static_cast<int>(layer.kept.size()));
    }
    masked.set_expert_mask(mask);
    const int vocab = masked.config().vocab_size;
    std::vector<int32_t> ids;
    for (int i = 0; i < 16; ++i) ids.push_back((i * 5 + 1) % vocab);
    const std::vector<float> want = masked.logits(ids);
    const std::vector<float> got = pruned.logits(ids);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_LE(greenmoe::testing::max_abs_diff(got, want.data()), 1e-5)
        << original << " keep " << keep;
}

class HfPruned : public ::testing::TestWithParam<std::string> {};

// Shared fixtures by name, tests/fixtures/hf-models folders by "generated/<name>".
TEST_P(HfPruned, PrunedModelEqualsMaskedOriginal) {
    TempDir tmp;
    const std::string generated = "generated/";
    const fs::path dir = GetParam().rfind(generated, 0) == 0
                             ? fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "hf-models" /
                                   GetParam().substr(generated.size())
                             : greenmoe::testing::hf_fixture_folder(tmp, "tiny_" + GetParam());
    expect_pruned_equals_masked(dir, 3, moeits::Criterion::Nmi, tmp);
    expect_pruned_equals_masked(dir, 2, moeits::Criterion::Random, tmp);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfPruned,
                         ::testing::Values("mixtral", "qwen3_moe", "deepseek_v2",
                                           "generated/qwen2_moe", "generated/olmoe",
                                           "generated/granitemoe", "generated/granitemoe_sharded"),
                         [](const auto& info) {
                             std::string name = info.param;
                             std::replace(name.begin(), name.end(), '/', '_');
                             return name;
                         });

// GraniteMoE with a shared expert: the fused expert tensors lose the pruned experts' slices,
// the shared MLP stays.
TEST(HfPruned, GraniteMoeSharedFusedExperts) {
    TempDir tmp;
    const fs::path dir = greenmoe::testing::hf_fixture_folder(tmp, "tiny_granitemoeshared");
    expect_pruned_equals_masked(dir, 2, moeits::Criterion::Nmi, tmp);
}

// DeepSeek-V3's sigmoid scores with e_score_correction_bias (sliced by simplify), with one
// expert group so that a pruned model can run it.
TEST(HfPruned, DeepseekV3NoauxTcOneGroup) {
    TempDir tmp;
    const fs::path src =
        fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "hf-models" / "deepseek_v3";
    const fs::path dir = tmp / "v3";
    fs::create_directories(dir);
    fs::copy_file(src / "model.safetensors", dir / "model.safetensors");
    auto config = nlohmann::json::parse(greenmoe::testing::read_text_file(src / "config.json"));
    config["n_group"] = 1;
    config["topk_group"] = 1;
    greenmoe::testing::write_text_file(dir / "config.json", config.dump(1));
    expect_pruned_equals_masked(dir, 5, moeits::Criterion::RouterNorm, tmp);
    expect_pruned_equals_masked(dir, 3, moeits::Criterion::Random, tmp);
}

// Group-limited routing chooses among the original expert groups, which a pruned model no
// longer has: refused rather than run with groups of the wrong experts.
TEST(HfPruned, GroupLimitedRoutingOfAPrunedModelIsRefused) {
    TempDir tmp;
    const fs::path dir =
        fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "hf-models" / "deepseek_v3";
    moeits::SimplifyOptions o;
    o.model = dir;
    o.out = tmp / "out";
    o.keep = 4;
    o.criterion = moeits::Criterion::RouterNorm;
    o.show_progress = false;
    o.log = [](const std::string&) {};
    moeits::simplify_model(o);
    const std::string msg = greenmoe::testing::error_message([&] { HfModel::load(o.out); });
    EXPECT_NE(msg.find("noaux_tc"), std::string::npos) << msg;
    EXPECT_NE(msg.find("pruned"), std::string::npos) << msg;
}

}  // namespace
}  // namespace greenmoe::hf

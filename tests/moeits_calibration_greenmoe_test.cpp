// The calibration pass on greenmoe checkpoints (greenmoe's own engine): routing counts equal
// the training engine's in evaluation mode, renormalised gates sum to one per token, and
// ean / reap prune greenmoe models; condmlp layers and naee are refused with the reason.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "greenmoe/io/token_shard.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/moeits/calibration.h"
#include "greenmoe/moeits/criteria/criterion.h"
#include "greenmoe/moeits/simplify.h"
#include "moeits_test_support.h"
#include "test_support.h"

namespace greenmoe::moeits {
namespace {

namespace fs = std::filesystem;
using greenmoe::testing::TempDir;

constexpr int kT = 16, kSequences = 5;

std::vector<int> write_ids(const fs::path& path) {
    std::vector<uint16_t> ids;
    for (int i = 0; i < kT * kSequences; ++i)
        ids.push_back(static_cast<uint16_t>((i * 37 + 11) % 64));
    write_token_shard(path, ids.data(), ids.size());
    return {ids.begin(), ids.end()};
}

TEST(CalibrationGreenmoe, CountsMatchTheTrainingEngineAndGatesSumToOne) {
    const TempDir tmp;
    const fs::path model = greenmoe::testing::write_greenmoe_model(
        tmp / "m" / "model.safetensors", greenmoe::testing::tiny_moe_config("gshard"));
    const std::vector<int> ids = write_ids(tmp / "c.bin");
    CalibrationOptions o;
    o.data = (tmp / "c.bin").string();
    o.sequence_length = kT;
    const Calibration c = calibrate_greenmoe(model, o);
    EXPECT_EQ(c.tokens, kT * kSequences);
    EXPECT_EQ(c.sequences, kSequences);
    ASSERT_EQ(c.layers.size(), 2u);

    // The same sequences through GptModel's forward, evaluation mode, no capacity limits.
    const std::unique_ptr<GptModel> full = load_model(model, 1, kT);
    full->set_training(false);
    full->set_capacity_limits(false);
    std::vector<std::vector<int64_t>> counts(2, std::vector<int64_t>(4, 0));
    for (int s = 0; s < kSequences; ++s) {
        full->forward(ids.data() + s * kT, nullptr, 1, kT);
        for (int l = 0; l < 2; ++l) {
            for (int e = 0; e < 4; ++e)
                counts[size_t(l)][size_t(e)] += full->moe_stats(l).counts[size_t(e)];
        }
    }
    for (int l = 0; l < 2; ++l) {
        const LayerCalibration& s = c.layers[size_t(l)];
        EXPECT_EQ(s.count, counts[size_t(l)]) << "layer " << l;
        double gates = 0.0;
        for (const double g : s.gate_sum) gates += g;
        EXPECT_NEAR(gates, kT * kSequences, 1e-9);
        for (int e = 0; e < 4; ++e) {
            // An expert's output norms: positive where chosen, REAP's mean below EAN's sum.
            EXPECT_EQ(s.norm_sum[size_t(e)] > 0.0, s.count[size_t(e)] > 0) << e;
            EXPECT_LE(reap_scores(s)[size_t(e)], ean_scores(s)[size_t(e)] + 1e-12) << e;
        }
    }
}

TEST(CalibrationGreenmoe, SimplifyWithEanAndReapAndRefusals) {
    const TempDir tmp;
    const fs::path model = greenmoe::testing::write_greenmoe_model(
        tmp / "m" / "model.safetensors", greenmoe::testing::tiny_moe_config("switch"));
    write_ids(tmp / "c.bin");
    SimplifyOptions o;
    o.model = model;
    o.keep = 2;
    o.calibration_data = (tmp / "c.bin").string();
    o.show_progress = false;
    o.log = [](const std::string&) {};
    for (const Criterion c : {Criterion::Ean, Criterion::Reap}) {
        o.criterion = c;
        o.out = tmp / criterion_name(c);
        const SimplifyResult r = simplify_model(o);
        for (const LayerOutcome& l : r.layers) {
            EXPECT_EQ(l.kept, keep_highest(l.scores, 2)) << criterion_name(c);
        }
        EXPECT_TRUE(load_model(o.out / "model.safetensors", 1, 1) != nullptr);
    }
    o.criterion = Criterion::Naee;
    o.out = tmp / "naee";
    EXPECT_NE(
        greenmoe::testing::error_message([&] { simplify_model(o); }).find("Hugging Face models"),
        std::string::npos);

    const fs::path cond = greenmoe::testing::write_greenmoe_model(
        tmp / "cond" / "model.safetensors", greenmoe::testing::tiny_moe_config("condmlp"));
    // condmlp experts are biases of one shared MLP (not prunable by simplify): the pass
    // counts their routing, and an output-norm criterion refuses its statistics.
    CalibrationOptions co;
    co.data = o.calibration_data;
    co.sequence_length = kT;
    const Calibration c = calibrate_greenmoe(cond, co);
    ASSERT_FALSE(c.layers.empty());
    EXPECT_FALSE(c.layers[0].has_outputs);
    MoeLayer layer;
    layer.n_experts = c.layers[0].n_experts;
    LayerContext context;
    context.layer = &layer;
    context.calibration = &c.layers[0];
    EXPECT_EQ(make_criterion(Criterion::Frequency)->scores(context).size(), 4u);
    const std::string msg =
        greenmoe::testing::error_message([&] { make_criterion(Criterion::Ean)->scores(context); });
    EXPECT_NE(msg.find("use frequency"), std::string::npos) << msg;
}

}  // namespace
}  // namespace greenmoe::moeits

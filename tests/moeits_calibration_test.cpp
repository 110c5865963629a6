// The calibration pass: refuses calibration data that is missing, empty or tokenized for
// another vocabulary; its observer sees every MoE layer without changing what the model
// computes.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "greenmoe/hf/hf_model.h"
#include "greenmoe/io/token_shard.h"
#include "greenmoe/moeits/calibration.h"
#include "greenmoe/moeits/simplify.h"
#include "moeits_test_support.h"
#include "test_support.h"

namespace greenmoe::moeits {
namespace {

namespace fs = std::filesystem;
using greenmoe::testing::error_message;
using greenmoe::testing::TempDir;

fs::path shard(const TempDir& tmp, const std::string& name, const std::vector<uint16_t>& ids) {
    const fs::path path = tmp / name;
    write_token_shard(path, ids.data(), ids.size());
    return path;
}

TEST(Calibration, RefusesMissingEmptyAndForeignData) {
    const TempDir tmp;
    const fs::path model = greenmoe::testing::hf_fixture_folder(tmp, "tiny_mixtral");  // vocab 13
    CalibrationOptions o;
    o.sequence_length = 8;

    o.data = (tmp / "absent.bin").string();
    std::string msg = error_message([&] { calibrate(model, o); });
    EXPECT_NE(msg.find("--calibration-data"), std::string::npos) << msg;
    EXPECT_NE(msg.find("absent.bin"), std::string::npos) << msg;

    o.data = shard(tmp, "empty.bin", {}).string();
    msg = error_message([&] { calibrate(model, o); });
    EXPECT_NE(msg.find("hold no tokens"), std::string::npos) << msg;
    EXPECT_NE(msg.find("empty.bin"), std::string::npos) << msg;

    // GPT-2 ids (50256 is <|endoftext|>) for a 13-token vocabulary.
    o.data = shard(tmp, "gpt2.bin", {1, 2, 3, 50256}).string();
    msg = error_message([&] { calibrate(model, o); });
    EXPECT_NE(msg.find("gpt2.bin"), std::string::npos) << msg;
    EXPECT_NE(msg.find("id 50256"), std::string::npos) << msg;
    EXPECT_NE(msg.find("another vocabulary"), std::string::npos) << msg;

    // simplify refuses the same before writing anything.
    SimplifyOptions s;
    s.model = model;
    s.out = tmp / "out";
    s.keep = 2;
    s.criterion = Criterion::Reap;
    s.calibration_data = o.data;
    s.show_progress = false;
    s.log = [](const std::string&) {};
    msg = error_message([&] { simplify_model(s); });
    EXPECT_NE(msg.find("another vocabulary"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(s.out / "model.safetensors"));
    s.calibration_data.clear();
    msg = error_message([&] { simplify_model(s); });
    EXPECT_NE(msg.find("--calibration-data"), std::string::npos) << msg;
}

// Counts what it sees and checks each trace is consistent.
class CountingObserver : public hf::MoeObserver {
  public:
    void observe(const hf::MoeLayerTrace& t) override {
        layers.push_back(t.layer);
        tokens += t.tokens;
        EXPECT_EQ(t.routing->experts.size(), static_cast<size_t>(t.tokens * t.routing->top_k));
        // run_expert reproduces the routed outputs the block computed.
        std::vector<float> y(static_cast<size_t>(t.hidden));
        for (int64_t tok = 0; tok < t.tokens; ++tok) {
            const int e = t.routing->experts[static_cast<size_t>(tok * t.routing->top_k)];
            t.run_expert(e, t.x + tok * t.hidden, 1, y.data());
            const float* slot = t.expert_out + tok * t.routing->top_k * t.hidden;
            for (int64_t d = 0; d < t.hidden; ++d) {
                EXPECT_NEAR(y[static_cast<size_t>(d)], slot[d], 1e-5f);
            }
        }
    }
    std::vector<int> layers;
    int64_t tokens = 0;
};

TEST(Calibration, ObserverSeesEveryMoeLayerAndChangesNothing) {
    const TempDir tmp;
    hf::HfModel model =
        hf::HfModel::load(greenmoe::testing::hf_fixture_folder(tmp, "tiny_mixtral"));
    const std::vector<int32_t> ids = {1, 5, 7, 2, 9, 11, 3};
    const std::vector<float> plain = model.logits(ids);
    CountingObserver observer;
    model.set_moe_observer(&observer);
    const std::vector<float> observed = model.logits(ids);
    model.set_moe_observer(nullptr);
    EXPECT_TRUE(greenmoe::testing::same_bits(plain, observed));
    EXPECT_EQ(observer.layers, (std::vector<int>{0, 1}));
    EXPECT_EQ(observer.tokens, 2 * static_cast<int64_t>(ids.size()));
}

TEST(Calibration, SequencesAndStatisticsAddUp) {
    const TempDir tmp;
    const fs::path model = greenmoe::testing::hf_fixture_folder(tmp, "tiny_mixtral");
    std::vector<uint16_t> ids;
    for (int i = 0; i < 30; ++i) ids.push_back(static_cast<uint16_t>((i * 7) % 13));
    CalibrationOptions o;
    o.data = shard(tmp, "a.bin", ids).string();
    o.tokens = 25;  // 3 sequences of 8, then one of 1
    o.sequence_length = 8;
    const Calibration c = calibrate(model, o);
    EXPECT_EQ(c.tokens, 25);
    EXPECT_EQ(c.sequences, 4);
    ASSERT_EQ(c.layers.size(), 2u);
    for (const LayerCalibration& l : c.layers) {
        int64_t slots = 0;
        double gates = 0.0;
        for (int e = 0; e < l.n_experts; ++e) {
            slots += l.count[static_cast<size_t>(e)];
            gates += l.gate_sum[static_cast<size_t>(e)];
        }
        EXPECT_EQ(slots, 25 * l.top_k);
        // Renormalised gate weights sum to 1 per token.
        EXPECT_NEAR(gates, 25.0, 1e-9);
        EXPECT_TRUE(l.gram.empty());  // NAEE statistics only when asked for
    }
}

}  // namespace
}  // namespace greenmoe::moeits

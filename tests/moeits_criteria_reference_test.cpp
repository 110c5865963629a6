// The data-driven pruning criteria (frequency, EAN, REAP, NAEE) against an independent numpy
// implementation of their definitions on the same calibration tokens
// (tools/fixtures/make_pruning_criteria_fixtures.py → tests/fixtures/pruning/).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/token_shard.h"
#include "greenmoe/moeits/calibration.h"
#include "greenmoe/moeits/criteria/criterion.h"
#include "greenmoe/moeits/naee.h"
#include "greenmoe/moeits/simplify.h"
#include "moeits_test_support.h"
#include "test_support.h"

namespace greenmoe::moeits {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using greenmoe::testing::TempDir;

// The engine runs in float32 against a float64 reference: scores agree to this relative
// tolerance (of the larger of 1 and the reference value) on the first decoder block; every
// block before a layer adds its own float32 rounding to that layer's input, so deeper layers
// are allowed kTolerance per block (qwen2_moe's block 2 differs by 1.3e-6).
constexpr double kTolerance = 1e-6;

double tolerance(int block) {
    return kTolerance * (1 + block);
}

Json fixture(const std::string& name) {
    return Json::parse(
        read_file(fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/pruning" / (name + ".json")));
}

fs::path model_folder(const TempDir& tmp, const std::string& name) {
    if (name == "tiny_mixtral") return greenmoe::testing::hf_fixture_folder(tmp, name);
    return fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/hf-models" / name;
}

fs::path write_ids(const TempDir& tmp, const Json& f) {
    std::vector<uint16_t> ids;
    for (const auto& id : f.at("ids")) ids.push_back(id.get<uint16_t>());
    const fs::path path = tmp / "calibration.bin";
    write_token_shard(path, ids.data(), ids.size());
    return path;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, int block,
                  const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t e = 0; e < got.size(); ++e) {
        EXPECT_NEAR(got[e], want[e], tolerance(block) * std::max(1.0, std::abs(want[e])))
            << what << " expert " << e;
    }
}

class CriteriaReference : public ::testing::TestWithParam<std::string> {};

TEST_P(CriteriaReference, ScoresAndNaeeMatchNumpy) {
    const TempDir tmp;
    const Json f = fixture(GetParam());
    CalibrationOptions options;
    options.data = write_ids(tmp, f).string();
    options.tokens = static_cast<int64_t>(f.at("ids").size());
    options.sequence_length = f.at("sequence_length").get<int>();
    options.naee = true;
    const Calibration c = calibrate(model_folder(tmp, GetParam()), options);
    EXPECT_EQ(c.tokens, options.tokens);
    EXPECT_EQ(c.sequences, f.at("sequences").get<int>());
    ASSERT_EQ(c.layers.size(), f.at("layers").size());
    for (const Json& want : f.at("layers")) {
        const LayerCalibration& got = c.layer(want.at("layer").get<int>());
        const std::string where = GetParam() + " layer " + std::to_string(got.layer);
        expect_close(frequency_scores(got), want.at("frequency"), got.layer, where + " frequency");
        expect_close(ean_scores(got), want.at("ean"), got.layer, where + " ean");
        expect_close(reap_scores(got), want.at("reap"), got.layer, where + " reap");
        for (const int keep : f.at("keeps").get<std::vector<int>>()) {
            const Json& n = want.at("naee").at(std::to_string(keep));
            // Brute force: every subset's reconstruction error, then the search's choice.
            const auto subsets = n.at("subsets").get<std::vector<std::vector<int>>>();
            const auto errors = n.at("errors").get<std::vector<double>>();
            for (size_t i = 0; i < subsets.size(); ++i) {
                EXPECT_NEAR(naee_reconstruction_error(got, subsets[i]), errors[i],
                            tolerance(got.layer) * std::max(1.0, errors[i]))
                    << where << " subset " << i;
            }
            const NaeeChoice exhaustive = naee_exhaustive(got, keep);
            EXPECT_TRUE(exhaustive.exhaustive);
            EXPECT_EQ(exhaustive.subsets_evaluated, static_cast<int64_t>(subsets.size()));
            EXPECT_EQ(exhaustive.kept, n.at("best").get<std::vector<int>>()) << where;
            EXPECT_NEAR(exhaustive.error, n.at("best_error").get<double>(),
                        tolerance(got.layer) * std::max(1.0, exhaustive.error));
            const NaeeChoice greedy = naee_greedy(got, keep);
            EXPECT_FALSE(greedy.exhaustive);
            EXPECT_EQ(greedy.kept, n.at("greedy").get<std::vector<int>>()) << where;
            EXPECT_NEAR(greedy.error, n.at("greedy_error").get<double>(),
                        tolerance(got.layer) * std::max(1.0, greedy.error));
            EXPECT_GE(greedy.error, exhaustive.error - 1e-12);
            std::printf("%s keep %d: NAEE exhaustive error %.6f %s, greedy %.6f %s\n",
                        where.c_str(), keep, exhaustive.error, Json(exhaustive.kept).dump().c_str(),
                        greedy.error, Json(greedy.kept).dump().c_str());
        }
    }
}

TEST_P(CriteriaReference, SimplifyKeepsTheReferenceSets) {
    const TempDir tmp;
    const Json f = fixture(GetParam());
    const fs::path model = model_folder(tmp, GetParam());
    const fs::path ids = write_ids(tmp, f);
    for (const char* name : {"frequency", "ean", "reap", "naee"}) {
        for (const int keep : f.at("keeps").get<std::vector<int>>()) {
            SimplifyOptions o;
            o.model = model;
            o.out = tmp / (std::string(name) + std::to_string(keep));
            o.keep = keep;
            o.criterion = parse_criterion(name);
            o.calibration_data = ids.string();
            o.calibration_tokens = static_cast<int64_t>(f.at("ids").size());
            o.calibration_sequence_length = f.at("sequence_length").get<int>();
            o.show_progress = false;
            o.log = [](const std::string&) {};
            const SimplifyResult r = simplify_model(o);
            ASSERT_EQ(r.layers.size(), f.at("layers").size());
            for (size_t i = 0; i < r.layers.size(); ++i) {
                const Json& want = f.at("layers")[i];
                const Json expected = std::string(name) == "naee"
                                          ? want.at("naee").at(std::to_string(keep)).at("best")
                                          : want.at("kept").at(std::to_string(keep)).at(name);
                EXPECT_EQ(Json(r.layers[i].kept), expected)
                    << GetParam() << " " << name << " keep " << keep << " layer "
                    << r.layers[i].layer;
            }
            const Json& summary = r.summary;
            EXPECT_EQ(summary.at("criterion"), name);
            EXPECT_EQ(summary.at("calibration").at("tokens"), f.at("ids").size());
            if (std::string(name) == "naee") {
                // Small layers are enumerated, and the summary says so.
                EXPECT_EQ(summary.at("layers")[0].at("naee").at("search"), "exhaustive");
                EXPECT_TRUE(
                    summary.at("layers")[0].at("naee").contains("greedy_reconstruction_error"));
            } else {
                EXPECT_EQ(summary.at("layers")[0].at("scores").size(),
                          static_cast<size_t>(r.layers[0].n_experts));
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CriteriaReference,
                         ::testing::Values("tiny_mixtral", "qwen2_moe"));

}  // namespace
}  // namespace greenmoe::moeits

// CPython's random.Random as reproduced in greenmoe::tasks::PythonRandom, against values that
// CPython itself produced (tests/fixtures/lm-eval/python_random.json).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "greenmoe/core/error.h"
#include "greenmoe/eval/tasks/python_random.h"

namespace {

using greenmoe::tasks::PythonRandom;

nlohmann::json load_fixture() {
    std::ifstream in(std::string(GREENMOE_SOURCE_DIR) +
                     "/tests/fixtures/lm-eval/python_random.json");
    EXPECT_TRUE(in.good());
    return nlohmann::json::parse(in);
}

TEST(PythonRandom, MatchesCPythonForEverySeed) {
    const nlohmann::json fixture = load_fixture();
    ASSERT_GE(fixture["cases"].size(), 5u);
    for (const auto& c : fixture["cases"]) {
        const uint64_t seed = c["seed"].get<uint64_t>();
        SCOPED_TRACE(seed);
        PythonRandom rng(seed);
        const auto& ks = c["getrandbits"]["k"];
        for (size_t i = 0; i < ks.size(); ++i) {
            EXPECT_EQ(rng.getrandbits(ks[i].get<int>()),
                      c["getrandbits"]["values"][i].get<uint64_t>())
                << "getrandbits(" << ks[i] << ")";
        }
        const auto& ns = c["randbelow"]["n"];
        for (size_t i = 0; i < ns.size(); ++i) {
            EXPECT_EQ(rng.randbelow(ns[i].get<uint64_t>()),
                      c["randbelow"]["values"][i].get<uint64_t>())
                << "_randbelow(" << ns[i] << ")";
        }
        for (const auto& s : c["samples"]) {
            const auto got = rng.sample(s["n"].get<size_t>(), s["k"].get<size_t>());
            EXPECT_EQ(got, s["result"].get<std::vector<size_t>>())
                << "sample(range(" << s["n"] << "), " << s["k"] << ")";
        }
        for (const auto& f : c["random"]) {
            EXPECT_EQ(rng.random(), std::stod(f.get<std::string>()));
        }
    }
}

TEST(PythonRandom, SampleOfTheWholePopulationIsAPermutation) {
    PythonRandom rng(1234);
    auto all = rng.sample(50, 50);
    std::sort(all.begin(), all.end());
    for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], i);
}

TEST(PythonRandom, SampleLargerThanPopulationIsAnError) {
    PythonRandom rng(1);
    EXPECT_THROW(rng.sample(3, 4), greenmoe::Error);
}

}  // namespace

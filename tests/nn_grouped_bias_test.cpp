// grouped_bias_backward against a naive sum, accumulation, and thread-count independence.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "greenmoe/core/rng.h"
#include "greenmoe/nn/grouped_bias.h"

namespace greenmoe {
namespace {

TEST(NnOpsGroupedBias, SumsRowsIntoTheirGroupAndAccumulates) {
    const int N = 300, W = 130, G = 5;  // W not a multiple of the 64-column block
    std::vector<float> dout(N * W);
    std::vector<int> group(N);
    for (int i = 0; i < N * W; ++i) dout[i] = rng_normal(1, i);
    for (int n = 0; n < N; ++n) group[n] = static_cast<int>(rng_u64(2, n) % G);
    std::vector<float> dbias(G * W, 1.0f);
    nn::grouped_bias_backward(dbias.data(), dout.data(), group.data(), N, W);
    for (int g = 0; g < G; ++g) {
        for (int c = 0; c < W; ++c) {
            double want = 1.0;
            for (int n = 0; n < N; ++n) {
                if (group[n] == g) want += dout[n * W + c];
            }
            ASSERT_NEAR(dbias[g * W + c], want, 1e-4) << g << " " << c;
        }
    }
}

TEST(NnOpsGroupedBias, SameBitsWithOneAndTwoThreads) {
    const int N = 2048, W = 384, G = 4;
    std::vector<float> dout(N * W);
    std::vector<int> group(N);
    for (int i = 0; i < N * W; ++i) dout[i] = rng_normal(3, i);
    for (int n = 0; n < N; ++n) group[n] = static_cast<int>(rng_u64(4, n) % G);
    std::vector<float> a(G * W, 0.0f), b(G * W, 0.0f);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    nn::grouped_bias_backward(a.data(), dout.data(), group.data(), N, W);
    omp_set_num_threads(2);
    nn::grouped_bias_backward(b.data(), dout.data(), group.data(), N, W);
    omp_set_num_threads(saved);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

}  // namespace
}  // namespace greenmoe

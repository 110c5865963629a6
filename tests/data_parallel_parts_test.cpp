// The parts of data-parallel training that need no MPI: each rank's windows of the data,
// sharded AdamW, optimizer shard boundaries, the backward pass's block hook, and the
// one-rank communicator.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "greenmoe/dist/communicator.h"
#include "greenmoe/io/token_shard.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/train/adamw.h"
#include "greenmoe/train/data_loader.h"
#include "greenmoe/train/data_parallel.h"
#include "test_support.h"

namespace greenmoe {
namespace {

// Two shards of consecutive token ids (0, 1, 2, …), 100 and 70 tokens long.
std::string write_shards(const testing::TempDir& tmp) {
    uint16_t next = 0;
    for (const auto& [name, n] : {std::pair{"s_000.bin", 100}, std::pair{"s_001.bin", 70}}) {
        std::vector<uint16_t> tokens(static_cast<size_t>(n));
        for (auto& t : tokens) t = next++;
        write_token_shard(tmp / name, tokens.data(), tokens.size());
    }
    return (tmp / "s_*.bin").string();
}

// The issue: N ranks with A micro-steps see exactly the windows of one process with N·A,
// across shard ends and epochs, and their positions after each step agree with it.
TEST(DataParallelParts, RanksTakeTheWindowsOfOneProcessInTurn) {
    testing::TempDir tmp;
    const std::string pattern = write_shards(tmp);
    const int B = 2, T = 8;  // 16-token windows: 6 fit the first shard, 4 the second
    for (const int world : {2, 3}) {
        DataLoader single(pattern, B, T);
        std::vector<DataLoader> ranks;
        for (int r = 0; r < world; ++r) ranks.emplace_back(pattern, B, T, r, world);
        std::vector<int> in(B * T), tg(B * T), rin(B * T), rtg(B * T);
        for (int step = 0; step < 9; ++step) {  // 9 × world windows: past two epochs
            for (int r = 0; r < world; ++r) {
                single.next_batch(in.data(), tg.data());
                ranks[size_t(r)].next_batch(rin.data(), rtg.data());
                EXPECT_EQ(in, rin) << "world " << world << " step " << step << " rank " << r;
                EXPECT_EQ(tg, rtg);
            }
            for (const DataLoader& l : ranks) {
                EXPECT_EQ(l.position().shard, single.position().shard);
                EXPECT_EQ(l.position().offset, single.position().offset);
                EXPECT_EQ(l.position().epoch, single.position().epoch);
            }
        }
        EXPECT_GE(single.position().epoch, 1u);
    }
    // A position saved by a 2-rank run resumes one process (and the reverse) in place.
    DataLoader two(pattern, B, T, 1, 2), one(pattern, B, T);
    std::vector<int> a(B * T), b(B * T), t(B * T);
    two.next_batch(a.data(), t.data());
    one.set_position(two.position());
    one.next_batch(a.data(), t.data());
    DataLoader reference(pattern, B, T);
    for (int i = 0; i < 3; ++i) reference.next_batch(b.data(), t.data());
    EXPECT_EQ(a, b);
}

// Shards of AdamW updated one after another give the same parameters and moments as one
// optimizer over everything, bit for bit, with decayed and undecayed tensors cut anywhere.
TEST(DataParallelParts, ShardedAdamWEqualsTheWhole) {
    GptConfig c;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 16;
    c.block_size = 8;
    c.vocab_size = 50;
    c.finalize();
    GptModel model(c, 1, 8);
    model.init_weights(3);
    const size_t n = model.layout().total_floats();
    std::vector<float> grads(n);
    for (size_t i = 0; i < n; ++i) grads[i] = std::sin(0.37f * float(i)) * 0.01f;
    std::vector<float> whole_params(model.params(), model.params() + n);
    AdamW whole(model.layout(), {});
    for (const int ranks : {2, 3, 7}) {
        std::vector<float> params = whole_params;
        const std::vector<size_t> cuts = optimizer_shards(n, ranks);
        std::vector<AdamW> shards;
        for (int r = 0; r < ranks; ++r) {
            shards.emplace_back(model.layout(), AdamWConfig{}, cuts[size_t(r)],
                                cuts[size_t(r) + 1]);
            EXPECT_TRUE(shards.back().sharded());
        }
        std::vector<float> reference = whole_params;
        AdamW all(model.layout(), {});
        for (int step = 0; step < 3; ++step) {
            all.step(reference.data(), grads.data(), 1e-2f);
            for (AdamW& s : shards) s.step(params.data(), grads.data(), 1e-2f);
        }
        EXPECT_EQ(params, reference) << ranks << " shards";
        for (int r = 0; r < ranks; ++r) {
            const size_t first = cuts[size_t(r)], count = cuts[size_t(r) + 1] - first;
            EXPECT_EQ(std::vector<float>(shards[size_t(r)].m(), shards[size_t(r)].m() + count),
                      std::vector<float>(all.m() + first, all.m() + first + count));
        }
    }
    EXPECT_FALSE(whole.sharded());
    EXPECT_NE(testing::error_message([&] { AdamW(model.layout(), {}, 10, n + 1); }).find("outside"),
              std::string::npos);
}

TEST(DataParallelParts, OptimizerShardsAreEvenAndAligned) {
    const std::vector<size_t> cuts = optimizer_shards(1000003, 4);
    ASSERT_EQ(cuts.size(), 5u);
    EXPECT_EQ(cuts.front(), 0u);
    EXPECT_EQ(cuts.back(), 1000003u);
    for (size_t r = 1; r < 4; ++r) {
        EXPECT_EQ(cuts[r] % 16, 0u);
        EXPECT_NEAR(double(cuts[r] - cuts[r - 1]), 1000003 / 4.0, 16.0);
    }
    // More ranks than floats: empty shards, never past the end.
    EXPECT_EQ(optimizer_shards(5, 4), (std::vector<size_t>{0, 0, 0, 0, 5}));
}

// The hook fires for every block from the top down, then once for the rest, each time
// when that block's gradient is final; the block ranges tile the parameters with the rest.
TEST(DataParallelParts, BackwardReportsEachBlockWhenItsGradientIsDone) {
    GptConfig c;
    c.n_layer = 3;
    c.n_head = 2;
    c.n_embd = 16;
    c.block_size = 8;
    c.vocab_size = 50;
    c.mlp = "switch";
    c.n_experts = 2;
    c.finalize();
    GptModel model(c, 2, 8);
    model.init_weights(5);
    std::vector<int> tokens(16), targets(16);
    for (int i = 0; i < 16; ++i)
        tokens[size_t(i)] = (i * 7) % 50, targets[size_t(i)] = (i * 3) % 50;

    // Reference gradient without the hook.
    model.zero_grad();
    model.forward(tokens.data(), targets.data(), 2, 8);
    model.backward();
    const size_t n = model.layout().total_floats();
    const std::vector<float> full(model.grads(), model.grads() + n);

    model.zero_grad();
    model.forward(tokens.data(), targets.data(), 2, 8);
    std::vector<int> order;
    model.backward(1.0f, [&](int block) {
        order.push_back(block);
        // What is reported done must already hold its final value.
        if (block >= 0) {
            const auto [first, end] = model.block_grad_range(block);
            for (size_t i = first; i < end; ++i) ASSERT_EQ(model.grads()[i], full[i]) << i;
        }
    });
    EXPECT_EQ(order, (std::vector<int>{2, 1, 0, -1}));
    EXPECT_EQ(model.block_grad_range(0).second, model.block_grad_range(1).first);
    EXPECT_EQ(model.block_grad_range(1).second, model.block_grad_range(2).first);
    EXPECT_GT(model.block_grad_range(0).first, 0u);  // the embeddings come first
    EXPECT_LT(model.block_grad_range(2).second, n);  // the final LayerNorm last
}

// Outside an MPI launcher the communicator is one rank whose collectives change nothing.
TEST(DataParallelParts, OneRankOutsideALauncher) {
    for (const char* v :
         {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "PMIX_RANK", "MV2_COMM_WORLD_SIZE"}) {
        ASSERT_EQ(std::getenv(v), nullptr) << v << " is set: run the tests outside mpirun";
    }
    const auto comm = Communicator::from_environment(10.0);
    EXPECT_EQ(comm->size(), 1);
    EXPECT_EQ(comm->rank(), 0);
    EXPECT_TRUE(comm->is_root());
    EXPECT_TRUE(comm->host_leader());
    std::vector<float> x = {1.5f, -2.0f};
    comm->all_reduce_sum(std::span<float>(x), "test");
    comm->start_all_reduce_sum(std::span<float>(x));
    comm->finish_pending("test");
    EXPECT_EQ(x, (std::vector<float>{1.5f, -2.0f}));
    const std::vector<double> mine = {3.0, 4.0};
    EXPECT_EQ(comm->all_gather(mine, "test"), mine);
    EXPECT_EQ(comm->split(10), (std::vector<size_t>{0, 10}));
    EXPECT_NE(
        testing::error_message([] { Communicator::from_environment(-1); }).find("--dist-timeout"),
        std::string::npos);
}

}  // namespace
}  // namespace greenmoe

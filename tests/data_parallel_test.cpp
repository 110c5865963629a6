// Data-parallel training under `mpirun -np 2 --oversubscribe`: the same run as one process
// with the same total batch, resume across rank counts, ZeRO-1, and a rank that dies.
// Skipped when greenmoe was built without MPI or mpirun is missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "greenmoe/dist/communicator.h"
#include "greenmoe/io/safetensors.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;

// mpirun refuses root unless told, and this machine has fewer cores than some runs ranks.
const char* kMpirun =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
    "mpirun --oversubscribe";

bool mpi_usable() {
    if (!Communicator::mpi_built()) return false;
    return testing::run_command("command -v mpirun >/dev/null 2>&1").exit_code == 0;
}

#define REQUIRE_MPI()                                                              \
    if (!mpi_usable()) GTEST_SKIP() << "greenmoe built without MPI, or no mpirun"; \
    static_assert(true)

// A tiny model on tinyshakespeare: B·T = 128 tokens per micro-batch and 256 per step,
// so one process takes 2 micro-steps and each of 2 ranks takes 1.
std::string train_args(const std::string& mlp, const fs::path& tmp, int steps) {
    std::string a = fmt::format(
        " train -c {} --set model.n_layer=2 --set model.n_embd=32 --set model.n_head=2 "
        "--set model.block_size=32 --set train.batch_size=4 --set train.seq_len=32 "
        "--set train.total_batch_tokens=256 --set train.max_steps={} --set train.lr=3e-3 "
        "--set train.warmup_steps=2 --set train.log_every=1 --set eval.val_every=0 "
        "--set eval.sample_every=0 --set checkpoint.every=1 --set checkpoint.keep=10 "
        "--data-dir {} --cache-dir {} --no-energy -q",
        (fs::path(GREENMOE_SOURCE_DIR) / "configs" / "nano.json").string(), steps,
        (testing::shared_data() / "text").string(), (tmp / "cache").string());
    if (mlp != "dense") {
        a += fmt::format(
            " --set model.mlp={} --set model.n_experts=4 --set model.top_k=1 "
            "--set model.w_load=0.01 --set model.bias_gamma=0.01",
            mlp);
    }
    return a;
}

testing::CommandResult one_process(const std::string& args, const fs::path& out,
                                   const std::string& extra = "") {
    return testing::run_command("OMP_NUM_THREADS=1 " + testing::greenmoe_binary().string() + args +
                                " -o " + out.string() + " " + extra + " 2>&1");
}

testing::CommandResult two_ranks(const std::string& args, const fs::path& out,
                                 const std::string& extra = "") {
    return testing::run_command(fmt::format("{} -np 2 {}{} -o {} {} 2>&1", kMpirun,
                                            testing::greenmoe_binary().string(), args, out.string(),
                                            extra));
}

// The records of one type in a run's log, in order.
std::vector<nlohmann::json> records(const fs::path& run, const std::string& type) {
    std::vector<nlohmann::json> out;
    std::istringstream lines(testing::read_text_file(run / "log.jsonl"));
    for (std::string line; std::getline(lines, line);) {
        const auto j = nlohmann::json::parse(line);
        if (j.at("type") == type) out.push_back(j);
    }
    return out;
}

std::vector<nlohmann::json> train_records(const fs::path& run) {
    return records(run, "train");
}

fs::path checkpoint(const fs::path& run, int step) {
    return run / "checkpoints" / fmt::format("step_{:08d}", step);
}

// The tensors (all, or those named) of two files agree within 1e-5 relative, measured as
// ‖a − b‖ / ‖a‖ over all their values together. Not element by element: parameters whose
// true gradient is exactly zero (the attention's key bias: softmax ignores a shift) get
// gradients of pure rounding noise, which Adam scales up to steps of ~lr whatever their
// size, so summing in another order moves those few values by ~1e-6 in absolute terms.
void expect_close_files(const fs::path& a, const fs::path& b,
                        const std::vector<std::string>& names) {
    const SafetensorsFile fa = SafetensorsFile::open(a), fb = SafetensorsFile::open(b);
    ASSERT_EQ(fa.tensors().size(), fb.tensors().size()) << a << " vs " << b;
    double diff2 = 0, norm2 = 0, worst = 0;
    std::string worst_name;
    for (const TensorInfo& t : fa.tensors()) {
        if (!names.empty() && std::find(names.begin(), names.end(), t.name) == names.end()) {
            continue;
        }
        const std::vector<float> x = fa.read_f32(t.name), y = fb.read_f32(t.name);
        ASSERT_EQ(x.size(), y.size()) << t.name;
        for (size_t i = 0; i < x.size(); ++i) {
            const double d = std::abs(double(x[i]) - double(y[i]));
            diff2 += d * d;
            norm2 += double(x[i]) * double(x[i]);
            if (d > worst) {
                worst = d;
                worst_name = t.name;
            }
        }
    }
    ASSERT_GT(norm2, 0.0);
    EXPECT_LE(std::sqrt(diff2 / norm2), 1e-5)
        << a << " vs " << b << ": largest |Δ| " << worst << " in " << worst_name;
}

void expect_same_losses(const fs::path& a, const fs::path& b, size_t steps) {
    const auto ra = train_records(a), rb = train_records(b);
    ASSERT_EQ(ra.size(), steps);
    ASSERT_EQ(rb.size(), steps);
    for (size_t i = 0; i < steps; ++i) {
        const double x = ra[i].at("loss"), y = rb[i].at("loss");
        EXPECT_NEAR(x, y, 1e-5 * std::abs(x)) << "step " << i;
        EXPECT_EQ(ra[i].at("tokens"), rb[i].at("tokens"));
    }
}

class DataParallel : public ::testing::TestWithParam<std::string> {};

// The issue: loss and parameters after 5 steps on 2 ranks equal one process with the same
// total batch (2 micro-steps) within 1e-5 relative; for switch with the DeepSeek bias on,
// the bias (moved by the summed counts) too. ZeRO-1 gives the same run.
TEST_P(DataParallel, TwoRanksMatchOneProcess) {
    REQUIRE_MPI();
    testing::TempDir tmp;
    const std::string args =
        train_args(GetParam(), tmp.path(), 5) +
        fmt::format(
            " --set eval.val_every=3 --set eval.val_tokens=2048 --set eval.hellaswag_every=3 "
            "--set eval.hellaswag_data={} "
            "--tokenizer {}",
            (fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "hellaswag" / "sample.jsonl")
                .string(),
            testing::tokenizer_dir().string());
    const auto one = one_process(args, tmp / "one");
    ASSERT_EQ(one.exit_code, 0) << one.output;
    const auto two = two_ranks(args, tmp / "two");
    ASSERT_EQ(two.exit_code, 0) << two.output;
    expect_same_losses(tmp / "one", tmp / "two", 5);
    expect_close_files(checkpoint(tmp / "one", 5) / "model.safetensors",
                       checkpoint(tmp / "two", 5) / "model.safetensors", {});
    if (GetParam() != "dense") {
        // The bias moves by ±γ from summed integer counts: exactly the same.
        const auto bias = [&](const char* run) {
            return SafetensorsFile::open(checkpoint(tmp / run, 5) / "optimizer.safetensors")
                .read_f32("moe_bias");
        };
        EXPECT_EQ(bias("one"), bias("two"));
        float moved = 0;
        for (const float b : bias("two")) moved += std::abs(b);
        EXPECT_GT(moved, 0.0f);
    }
    const auto log = train_records(tmp / "two");
    EXPECT_EQ(log[0].at("tokens"), 256);
    EXPECT_TRUE(log[0].contains("comm_wait_ms"));
    if (GetParam() != "dense") {
        // Global routing counts: every step's loads add up over both ranks' tokens.
        EXPECT_EQ(log[4].at("moe").at(0).at("load").size(), 4u);
    }

    // Validation and HellaSwag are split over the ranks and summed: the same scores.
    const auto val_one = records(tmp / "one", "val"), val_two = records(tmp / "two", "val");
    ASSERT_EQ(val_one.size(), 3u);  // steps 0 and 3, and the end
    ASSERT_EQ(val_two.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
        const double x = val_one[i].at("val_loss"), y = val_two[i].at("val_loss");
        EXPECT_NEAR(x, y, 1e-5 * x) << i;
    }
    const auto hs_one = records(tmp / "one", "eval"), hs_two = records(tmp / "two", "eval");
    ASSERT_EQ(hs_one.size(), 2u);  // step 3 and the end
    ASSERT_EQ(hs_two.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(hs_two[i].at("items"), 4);
        for (const char* key : {"acc", "acc_norm", "harness_acc", "harness_acc_norm"}) {
            EXPECT_EQ(hs_one[i].at(key), hs_two[i].at(key)) << key;
        }
    }

    const auto zero = two_ranks(args, tmp / "zero", "--shard-optimizer --no-overlap");
    ASSERT_EQ(zero.exit_code, 0) << zero.output;
    expect_same_losses(tmp / "one", tmp / "zero", 5);
    expect_close_files(checkpoint(tmp / "one", 5) / "model.safetensors",
                       checkpoint(tmp / "zero", 5) / "model.safetensors", {});
    // The root gathered every shard's moments into the checkpoint.
    expect_close_files(checkpoint(tmp / "one", 5) / "optimizer.safetensors",
                       checkpoint(tmp / "zero", 5) / "optimizer.safetensors", {});
}

INSTANTIATE_TEST_SUITE_P(Variants, DataParallel, ::testing::Values("dense", "switch"));

// A 2-rank run stopped at step 3 continues exactly on 2 ranks (ZeRO-1 shards included),
// and on 1 rank with the same total batch (2 micro-steps there).
TEST(DataParallelResume, ContinuesOnTwoRanksAndOnOne) {
    REQUIRE_MPI();
    testing::TempDir tmp;
    const std::string args = train_args("switch", tmp.path(), 5);
    const auto whole = two_ranks(args, tmp / "whole", "--shard-optimizer");
    ASSERT_EQ(whole.exit_code, 0) << whole.output;

    const auto first = two_ranks(args, tmp / "resumed2", "--shard-optimizer --stop-at 3");
    ASSERT_EQ(first.exit_code, 0) << first.output;
    fs::copy(tmp / "resumed2", tmp / "resumed1", fs::copy_options::recursive);
    const auto again = two_ranks(args, tmp / "resumed2", "--shard-optimizer");
    ASSERT_EQ(again.exit_code, 0) << again.output;
    expect_same_losses(tmp / "whole", tmp / "resumed2", 5);
    // Same ranks, same order of operations: the resumed run is the same run, bit for bit.
    for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
        EXPECT_EQ(testing::read_text_file(checkpoint(tmp / "whole", 5) / file),
                  testing::read_text_file(checkpoint(tmp / "resumed2", 5) / file))
            << file;
    }

    const auto alone = one_process(args, tmp / "resumed1");
    ASSERT_EQ(alone.exit_code, 0) << alone.output;
    expect_same_losses(tmp / "whole", tmp / "resumed1", 5);
    const auto log = train_records(tmp / "resumed1");
    EXPECT_EQ(log[4].at("tokens"), 5 * 256);
    expect_close_files(checkpoint(tmp / "whole", 5) / "model.safetensors",
                       checkpoint(tmp / "resumed1", 5) / "model.safetensors", {});
}

// Each rank measures its own share and the root logs the sum and each rank's; one
// emissions.csv row per segment, written by the root alone.
TEST(DataParallelEnergy, TheRootReportsTheSumOfAllRanks) {
    REQUIRE_MPI();
    testing::TempDir tmp;
    std::string args = train_args("dense", tmp.path(), 3);
    args.replace(args.find(" --no-energy"), 12, " --location FR");
    const auto run = two_ranks(args, tmp / "run");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    for (const auto& r : train_records(tmp / "run")) {
        const std::vector<double> per_rank = r.at("energy_j_per_rank");
        ASSERT_EQ(per_rank.size(), 2u);
        EXPECT_GT(per_rank[0], 0.0);
        EXPECT_GT(per_rank[1], 0.0);
        const double total = r.at("energy_j");
        EXPECT_NEAR(total, per_rank[0] + per_rank[1], 1e-9 * total);
    }
    const std::string csv = testing::read_text_file(tmp / "run" / "emissions.csv");
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2) << csv;  // header and one row
}

// A rank killed mid-run ends the whole job with the launcher's message; a rank that leaves
// early (here: told to stop at step 2) makes the other give up after --dist-timeout with
// ours. Neither hangs.
TEST(DataParallelFailure, ADeadRankEndsTheJob) {
    REQUIRE_MPI();
    testing::TempDir tmp;
    const std::string args =
        train_args("dense", tmp.path(), 1'000'000) + " --set checkpoint.every=0";
    const std::string bin = testing::greenmoe_binary().string();
    // Prepare the data once so that both runs start training at once.
    ASSERT_EQ(one_process(train_args("dense", tmp.path(), 1), tmp / "warm").exit_code, 0);

    auto t0 = std::chrono::steady_clock::now();
    const auto killed = testing::run_command(fmt::format(
        "{} -np 1 {}{} -o {} --dist-timeout 60 : -np 1 timeout -s KILL 3 {}{} -o {} 2>&1", kMpirun,
        bin, args, (tmp / "k").string(), bin, args, (tmp / "k").string()));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_NE(killed.exit_code, 0) << killed.output;
    EXPECT_LT(seconds, 40.0) << killed.output;
    // mpirun names the rank ("process rank 1 … exited on signal 9"), or, when the rank died
    // before MPI started in it, the process and its exit code.
    EXPECT_TRUE(killed.output.find("rank 1") != std::string::npos ||
                killed.output.find("xit code") != std::string::npos)
        << killed.output;

    t0 = std::chrono::steady_clock::now();
    const auto left = testing::run_command(
        fmt::format("{} -np 1 {}{} -o {} --dist-timeout 3 : -np 1 {}{} -o {} --stop-at 2 2>&1",
                    kMpirun, bin, args, (tmp / "l").string(), bin, args, (tmp / "l").string()));
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_NE(left.exit_code, 0) << left.output;
    EXPECT_LT(seconds, 40.0) << left.output;
    EXPECT_NE(left.output.find("no answer from the other ranks"), std::string::npos) << left.output;
}

// An error on one rank (here: the root cannot resume a run whose config changed) ends all
// ranks with that rank's message.
TEST(DataParallelFailure, AnErrorOnOneRankEndsAll) {
    REQUIRE_MPI();
    testing::TempDir tmp;
    const std::string args = train_args("dense", tmp.path(), 2);
    ASSERT_EQ(two_ranks(args, tmp / "run").exit_code, 0);
    const auto changed = two_ranks(args, tmp / "run", "--set train.seed=7");
    EXPECT_NE(changed.exit_code, 0) << changed.output;
    EXPECT_NE(changed.output.find("rank 0 of 2: "), std::string::npos) << changed.output;
    EXPECT_NE(changed.output.find("cannot resume"), std::string::npos) << changed.output;

    // 3 ranks cannot share a 256-token step of 128-token micro-batches.
    const auto three = testing::run_command(fmt::format("{} -np 3 {}{} -o {} 2>&1", kMpirun,
                                                        testing::greenmoe_binary().string(), args,
                                                        (tmp / "three").string()));
    EXPECT_NE(three.exit_code, 0) << three.output;
    EXPECT_NE(three.output.find("must be a multiple of batch_size × seq_len × ranks"),
              std::string::npos)
        << three.output;
    EXPECT_FALSE(fs::exists(tmp / "three" / "log.jsonl"));

    // Other commands do not split their work: under mpirun they refuse to start.
    const auto eval = testing::run_command(fmt::format("{} -np 2 {} eval --checkpoint {} 2>&1",
                                                       kMpirun, testing::greenmoe_binary().string(),
                                                       (tmp / "run").string()));
    EXPECT_NE(eval.exit_code, 0) << eval.output;
    EXPECT_NE(eval.output.find("`greenmoe eval` runs in one process"), std::string::npos)
        << eval.output;
}

}  // namespace
}  // namespace greenmoe

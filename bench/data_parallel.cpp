// Data-parallel scaling on this machine: tokens/s of `greenmoe train` as 1 rank × 2 threads
// against 2 ranks × 1 thread (mpirun), with the gradient sums overlapped with the backward
// pass, after it (--no-overlap), and with ZeRO-1 (--shard-optimizer); and the time each
// step waits in collectives. Same model, data and total batch for all; the runs alternate
// so that the machine's drift falls on each alike. Needs mpirun and an MPI build.
#include <fmt/format.h>

#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

struct Setup {
    std::string name;
    std::string launch;  // prefix before the greenmoe binary
    std::string extra;   // after the train arguments
};

struct Result {
    std::vector<double> tokens_per_s;  // per run: median over its steps (the first left out)
    std::vector<double> wait_ms;       // per run: mean wait in collectives per step
    std::vector<double> step_ms;
};

double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / double(v.size());
}

}  // namespace

int main(int argc, char** argv) {
    // data_parallel [data dir with tinyshakespeare.txt] [steps per run] [rounds]
    const fs::path self = fs::absolute(argv[0]).parent_path();
    const fs::path greenmoe = self.parent_path() / "greenmoe";
    const fs::path source = fs::path(GREENMOE_SOURCE_DIR);
    const std::string data_dir = argc > 1 ? argv[1] : "";
    const int steps = argc > 2 ? std::atoi(argv[2]) : 12;
    const int rounds = argc > 3 ? std::atoi(argv[3]) : 2;
    const fs::path work = fs::temp_directory_path() / fmt::format("greenmoe_dp_bench_{}", getpid());
    fs::create_directories(work);

    // nano (4 layers, 128 wide, GPT-2 vocabulary): 2048 tokens per micro-batch, 4096 per
    // step, so 1 rank takes 2 micro-steps and each of 2 ranks 1.
    const std::string args = fmt::format(
        " train -c {} --set train.batch_size=16 --set train.seq_len=128 "
        "--set train.total_batch_tokens=4096 --set train.max_steps={} --set train.log_every=1 "
        "--set eval.val_every=0 --set eval.sample_every=0 --set checkpoint.every=0 "
        "--cache-dir {} --no-energy -q{}",
        (source / "configs" / "nano.json").string(), steps, (work / "cache").string(),
        data_dir.empty() ? "" : " --data-dir " + data_dir);
    const std::string mpirun =
        "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "
        "mpirun --oversubscribe --bind-to none -np 2 ";
    const std::vector<Setup> setups = {
        {"1 rank x 2 threads", "OMP_NUM_THREADS=2 ", ""},
        {"2 ranks x 1 thread, overlapped sums", mpirun, ""},
        {"2 ranks x 1 thread, sums after backward", mpirun, " --no-overlap"},
        {"2 ranks x 1 thread, ZeRO-1", mpirun, " --shard-optimizer"},
    };

    // Prepares the dataset once, outside the timed runs.
    if (std::system((greenmoe.string() + args + " --set train.max_steps=1 -o " +
                     (work / "warm").string() + " > /dev/null 2>&1")
                        .c_str()) != 0) {
        std::fprintf(stderr, "data_parallel: the warm-up run failed (is the data reachable?)\n");
        return 1;
    }
    std::map<std::string, Result> results;
    for (int round = 0; round < rounds; ++round) {
        for (const Setup& s : setups) {
            const fs::path out = work / fmt::format("run_{}_{}", round, &s - setups.data());
            const std::string cmd = s.launch + greenmoe.string() + args + s.extra + " -o " +
                                    out.string() + " > " + (out.string() + ".out") + " 2>&1";
            fs::create_directories(out.parent_path());
            if (std::system(cmd.c_str()) != 0) {
                std::fprintf(stderr, "data_parallel: failed: %s\n", cmd.c_str());
                return 1;
            }
            std::ifstream log(out / "log.jsonl");
            std::vector<double> tps, wait, step_ms;
            for (std::string line; std::getline(log, line);) {
                const auto j = nlohmann::json::parse(line);
                if (j.at("type") != "train" || j.at("step").get<int>() == 0) continue;
                tps.push_back(j.at("tokens_per_s").get<double>());
                step_ms.push_back(j.at("step_ms").get<double>());
                wait.push_back(j.value("comm_wait_ms", 0.0));
            }
            Result& r = results[s.name];
            r.tokens_per_s.push_back(median(tps));
            r.wait_ms.push_back(mean(wait));
            r.step_ms.push_back(median(step_ms));
        }
    }
    const double base = median(results[setups[0].name].tokens_per_s);
    fmt::print("nano, 4096 tokens per step, {} steps per run, {} rounds (median of runs)\n", steps,
               rounds);
    fmt::print("{:<40} {:>10} {:>9} {:>9} {:>16}\n", "setup", "tokens/s", "vs 1x2", "step ms",
               "collective ms/step");
    for (const Setup& s : setups) {
        const Result& r = results[s.name];
        const double tps = median(r.tokens_per_s);
        fmt::print("{:<40} {:>10.0f} {:>8.2f}x {:>9.1f} {:>9.1f} ({:.0f}%)\n", s.name, tps,
                   tps / base, median(r.step_ms), median(r.wait_ms),
                   100.0 * median(r.wait_ms) / median(r.step_ms));
    }
    fs::remove_all(work);
    return 0;
}

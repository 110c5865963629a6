// A sweep's throughput on this machine: two runs of a preset (two seeds) trained at once with
// one thread each (`sweep --jobs 2`, each pinned to its own core) against the same two runs
// one after another with two threads each (`--jobs 1`). Small per-block operations spread
// poorly over threads (see data_parallel), so whole runs side by side may use the cores
// better. The grids alternate so that the machine's drift falls on both alike.
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/io/atomic_file.h"
#include "greenmoe/sweep/sweep_runner.h"
#include "greenmoe/sweep/sweep_spec.h"

namespace fs = std::filesystem;
using namespace greenmoe;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
    // sweep_parallel [data dir with tinyshakespeare.txt] [steps per run] [rounds] [preset]
    const fs::path greenmoe = fs::absolute(argv[0]).parent_path().parent_path() / "greenmoe";
    const fs::path source = fs::path(GREENMOE_SOURCE_DIR);
    const std::string data_dir = argc > 1 ? argv[1] : (source / "../shared/data").string();
    const int steps = argc > 2 ? std::atoi(argv[2]) : 40;
    const int rounds = argc > 3 ? std::atoi(argv[3]) : 2;
    const fs::path preset = argc > 4 ? fs::path(argv[4]) : source / "configs/nano.json";
    const fs::path work =
        fs::temp_directory_path() / fmt::format("greenmoe_sweep_bench_{}", getpid());
    fs::create_directories(work);

    const nlohmann::json spec = {{"base", fs::absolute(preset).string()},
                                 {"set",
                                  {{"train.max_steps", steps},
                                   {"eval.val_every", 0},
                                   {"eval.sample_every", 0},
                                   {"eval.hellaswag_every", 0},
                                   {"checkpoint.every", 0}}},
                                 {"axes", {{"mechanism", {"none"}}}},
                                 {"seeds", 2}};
    write_file_atomic(work / "spec.json", spec.dump(2));
    const sweep::SweepPlan plan = sweep::read_sweep_plan(work / "spec.json");
    const int tokens_per_step = [&] {
        const nlohmann::json c = nlohmann::json::parse(read_file(preset));
        return c["train"].value("batch_size", 8) * c["train"].value("seq_len", 256);
    }();
    const double grid_tokens = 2.0 * steps * tokens_per_step;

    std::printf("sweep_parallel: 2 runs of %s, %d steps each (%.0f tokens in all), %d rounds\n",
                preset.filename().c_str(), steps, grid_tokens, rounds);
    // Warm the data cache (tokenized shards) so that neither grid pays for it.
    struct Setup {
        const char* name;
        int jobs;
    };
    const Setup setups[] = {{"one after another, 2 threads each (--jobs 1)", 1},
                            {"both at once, 1 thread each (--jobs 2)", 2}};
    std::vector<std::vector<double>> seconds(2);
    for (int round = -1; round < rounds; ++round) {
        for (int s = 0; s < 2; ++s) {
            if (round < 0 && s > 0) break;  // the warm-up round: one grid
            const fs::path out = work / fmt::format("grid_{}", s);
            fs::remove_all(out);
            sweep::SweepOptions o;
            o.out_dir = out;
            o.executable = greenmoe;
            o.jobs = setups[s].jobs;
            o.threads = 2;
            o.quiet = true;
            o.train_args = {"--data-dir", data_dir, "--cache-dir", (work / "cache").string(),
                            "--no-energy"};
            const auto t0 = std::chrono::steady_clock::now();
            const sweep::SweepOutcome r = sweep::run_sweep(plan, o);
            const double t =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (r.done != 2) {
                std::fprintf(stderr, "sweep_parallel: a run failed; see %s\n", out.c_str());
                return 1;
            }
            if (round >= 0) seconds[size_t(s)].push_back(t);
        }
    }
    const double seq = median(seconds[0]), par = median(seconds[1]);
    std::printf("%-48s %10s %12s\n", "", "grid s", "tokens/s");
    for (int s = 0; s < 2; ++s) {
        const double m = median(seconds[size_t(s)]);
        std::printf("%-48s %10.1f %12.0f\n", setups[s].name, m, grid_tokens / m);
    }
    std::printf("grid throughput, both at once vs one after another: %.2fx (median of %d)\n",
                seq / par, rounds);
    fs::remove_all(work);
    return 0;
}

// Running a sweep's grid as `greenmoe train` child processes (see sweep_runner.h).
#include "greenmoe/sweep/sweep_runner.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/run_lock.h"
#include "greenmoe/io/stop_signal.h"
#include "greenmoe/train/train_config.h"

extern char** environ;

namespace greenmoe::sweep {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kTrainOutput = "train.out";  // a run's console output, appended

// The last `bytes` of a file (all of it when shorter); "" when it cannot be read.
std::string file_tail(const fs::path& path, size_t bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    const std::streamoff start =
        size > static_cast<std::streamoff>(bytes) ? size - static_cast<std::streamoff>(bytes) : 0;
    in.seekg(start);
    std::string text(static_cast<size_t>(size - start), '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    return text;
}

// Why a training process failed, in its own words when it printed an error.
std::string failure_reason(const fs::path& run_dir, int status) {
    std::istringstream in(file_tail(run_dir / kTrainOutput, 16384));
    std::string line, error;
    while (std::getline(in, line)) {
        if (line.find("error:") != std::string::npos) error = line;
    }
    const std::string how = WIFEXITED(status)
                                ? fmt::format("exited with status {}", WEXITSTATUS(status))
                                : fmt::format("killed by {}", signal_name(WTERMSIG(status)));
    if (error.empty())
        return fmt::format("greenmoe train {} (see {})", how, (run_dir / kTrainOutput).string());
    return fmt::format("{} ({})", error, how);
}

// A prepared `greenmoe train` command: argv and environment built before fork(), since
// the child may only make async-signal-safe calls until it execs.
struct ChildCommand {
    std::vector<std::string> args, env;
    std::vector<char*> argv, envp;
    std::string output;
    std::vector<int> cpus;

    void seal() {
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        for (std::string& e : env) envp.push_back(e.data());
        envp.push_back(nullptr);
    }
};

pid_t spawn(ChildCommand& cmd) {
    cmd.seal();
    cpu_set_t mask;
    CPU_ZERO(&mask);
    for (int c : cmd.cpus) CPU_SET(c, &mask);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    check(pid >= 0, "sweep: cannot start a training process: {}", std::strerror(errno));
    if (pid > 0) return pid;
    // The child. Its own process group: a terminal's Ctrl-C reaches only the sweep, which
    // passes one SIGTERM on (a second signal would end a training without its checkpoint).
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // the sweep killed: stop at the next step, saved
    if (getppid() != parent) _exit(143);
    if (!cmd.cpus.empty()) sched_setaffinity(0, sizeof(mask), &mask);
    const int fd = open(cmd.output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execve(cmd.argv[0], cmd.argv.data(), cmd.envp.data());
    const char message[] = "greenmoe sweep: error: cannot run the greenmoe executable\n";
    [[maybe_unused]] const ssize_t w = write(STDERR_FILENO, message, sizeof(message) - 1);
    _exit(127);
}

std::vector<std::string> environment_with_threads(int threads) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view v(*e);
        if (v.starts_with("OMP_NUM_THREADS=") || v.starts_with("OPENBLAS_NUM_THREADS=")) continue;
        env.emplace_back(v);
    }
    env.push_back(fmt::format("OMP_NUM_THREADS={}", threads));
    env.push_back("OPENBLAS_NUM_THREADS=1");  // greenmoe's threads are OpenMP's
    return env;
}

// A new sweep.json for the plan, carrying over what an earlier one recorded. An earlier
// sweep in the folder with other settings for a run of the same name is refused: its run
// folders would mix two configurations.
SweepState merge_state(const SweepPlan& plan, const fs::path& out) {
    SweepState state = initial_state(plan);
    if (!fs::exists(out / "sweep.json")) return state;
    const SweepState before = read_sweep_state(out);
    const std::string file = (out / "sweep.json").string();
    check(before.base == state.base,
          "{}: this folder holds a sweep based on {}, not {}; use another --out", file, before.base,
          state.base);
    std::map<std::string, const SweepRunState*> old;
    for (const SweepRunState& r : before.runs) old[r.name] = &r;
    for (SweepRunState& r : state.runs) {
        const auto it = old.find(r.name);
        if (it == old.end()) continue;
        if (it->second->overrides != r.overrides) {
            std::string was, now;
            for (const auto& s : it->second->overrides) was += fmt::format(" {}", s);
            for (const auto& s : r.overrides) now += fmt::format(" {}", s);
            fail("{}: run {} was trained with other settings (was:{}; now:{}); use another --out",
                 file, r.name, was, now);
        }
        r.seconds = it->second->seconds;
        r.status = it->second->status;
        r.error = it->second->error;
    }
    return state;
}

}  // namespace

RunProgress read_run_progress(const fs::path& run_dir) {
    RunProgress p;
    std::istringstream in(file_tail(run_dir / "log.jsonl", 256 * 1024));
    std::string line;
    while (std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;  // a cut first or torn last line
        const std::string type = j.value("type", "");
        if (type == "start") p.done = false;
        if (type == "done") p.done = true;
        if (type == "train" || type == "done") {
            if (j.contains("step") && j["step"].is_number_integer()) p.step = j["step"];
            if (j.contains("energy_j") && j["energy_j"].is_number()) p.energy_j = j["energy_j"];
            if (j.contains("co2e_g") && j["co2e_g"].is_number()) p.co2e_g = j["co2e_g"];
        }
    }
    return p;
}

std::vector<int> usable_cpus() {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof(mask), &mask) == 0) {
        for (int c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &mask)) cpus.push_back(c);
        }
    }
    if (cpus.empty()) {
        const unsigned n = std::max(1u, std::thread::hardware_concurrency());
        for (unsigned c = 0; c < n; ++c) cpus.push_back(static_cast<int>(c));
    }
    return cpus;
}

SweepOutcome run_sweep(const SweepPlan& plan, const SweepOptions& options) {
    const fs::path out = options.out_dir;
    fs::create_directories(out);
    const RunLock lock(out);
    SweepState state = merge_state(plan, out);

    // What is left: finished runs (a "done" record) are skipped whatever sweep.json says.
    std::vector<int64_t> max_steps(state.runs.size());
    int64_t steps_total = 0, steps_before = 0;
    for (size_t i = 0; i < state.runs.size(); ++i) {
        SweepRunState& r = state.runs[i];
        max_steps[i] = load_train_config(state.base, r.overrides).max_steps;
        const RunProgress p = read_run_progress(out / r.name);
        if (p.done) {
            r.status = "done";
            r.error.clear();
        } else if (r.status != "failed") {
            r.status = "pending";
        }
        steps_total += max_steps[i];
        steps_before += p.done ? max_steps[i] : std::min(p.step, max_steps[i]);
    }
    write_sweep_state(out, state);

    const std::vector<int> cpus = usable_cpus();
    const int threads = options.threads > 0 ? options.threads : static_cast<int>(cpus.size());
    const int jobs = std::max(1, std::min(options.jobs, threads));
    const int per_job = std::max(1, threads / jobs);
    if (jobs > 1 && !options.quiet) {
        std::fprintf(stderr,
                     "greenmoe sweep: %d runs at once, %d thread%s each; each run's estimated "
                     "energy counts its own CPU time, but a measured one (RAPL) counts the "
                     "whole package and so overlaps between runs at the same time\n",
                     jobs, per_job, per_job == 1 ? "" : "s");
    }

    // Failed runs are tried again: the failure may have been the machine's (memory, a kill).
    std::vector<size_t> queue;
    for (size_t i = 0; i < state.runs.size(); ++i) {
        if (state.runs[i].status != "done") queue.push_back(i);
    }
    struct Slot {
        pid_t pid = 0;
        size_t run = 0;
        Clock::time_point started;
    };
    std::vector<Slot> slots(static_cast<size_t>(jobs));
    StopSignals stop;
    int stop_signal = 0;
    size_t next = 0;
    const auto t0 = Clock::now();
    std::optional<ProgressBar> bar;
    if (!options.quiet) {
        bar.emplace("sweep",
                    static_cast<uint64_t>(std::max<int64_t>(0, steps_total - steps_before)),
                    "steps");
    }
    SweepOutcome outcome;
    // A finished run's log no longer changes: it is read once, not at every redraw.
    std::vector<std::optional<RunProgress>> finished(state.runs.size());
    const auto progress_figures = [&](int64_t& steps_now) {
        steps_now = 0;
        double joules = 0.0, grams = 0.0;
        for (size_t i = 0; i < state.runs.size(); ++i) {
            const RunProgress p =
                finished[i] ? *finished[i] : read_run_progress(out / state.runs[i].name);
            if (p.done) finished[i] = p;
            steps_now += p.done ? max_steps[i] : std::min(p.step, max_steps[i]);
            joules += p.energy_j.value_or(0.0);
            grams += p.co2e_g.value_or(0.0);
        }
        outcome.energy_j = joules;
        outcome.co2e_g = grams;
    };
    while (true) {
        if (stop_signal == 0 && stop.signal() != 0) {
            stop_signal = stop.signal();
            for (const Slot& s : slots) {
                if (s.pid > 0) kill(s.pid, SIGTERM);
            }
        }
        // Start runs in free slots.
        for (size_t k = 0; k < slots.size() && stop_signal == 0; ++k) {
            if (slots[k].pid != 0 || next >= queue.size()) continue;
            const size_t i = queue[next++];
            SweepRunState& r = state.runs[i];
            const fs::path run_dir = out / r.name;
            fs::create_directories(run_dir);
            ChildCommand cmd;
            cmd.args = {options.executable.string(), "train", "--config", state.base};
            for (const std::string& s : r.overrides) {
                cmd.args.push_back("--set");
                cmd.args.push_back(s);
            }
            cmd.args.insert(cmd.args.end(), {"--out", run_dir.string(), "--quiet"});
            cmd.args.insert(cmd.args.end(), options.train_args.begin(), options.train_args.end());
            cmd.env = environment_with_threads(per_job);
            cmd.output = (run_dir / kTrainOutput).string();
            if (jobs > 1) {
                for (int c = 0; c < per_job; ++c) {
                    cmd.cpus.push_back(cpus[static_cast<size_t>(k * per_job + c) % cpus.size()]);
                }
            }
            slots[k] = {spawn(cmd), i, Clock::now()};
            r.status = "running";
            r.error.clear();
            write_sweep_state(out, state);
        }
        // Collect the ones that ended.
        bool any_running = false;
        for (Slot& s : slots) {
            if (s.pid == 0) continue;
            int status = 0;
            const pid_t got = waitpid(s.pid, &status, WNOHANG);
            if (got == 0) {
                any_running = true;
                continue;
            }
            SweepRunState& r = state.runs[s.run];
            r.seconds += std::chrono::duration<double>(Clock::now() - s.started).count();
            const bool exited_ok = got == s.pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
            const bool finished = read_run_progress(out / r.name).done;
            if (exited_ok && finished) {
                r.status = "done";
            } else if (stop_signal != 0) {
                r.status = "pending";  // stopped with the sweep; resumes next time
            } else {
                r.status = "failed";
                r.error = exited_ok ? "greenmoe train ended without finishing the run"
                                    : failure_reason(out / r.name, status);
                if (!options.quiet) {
                    std::fprintf(stderr, "\ngreenmoe sweep: run %s failed: %s\n", r.name.c_str(),
                                 r.error.c_str());
                }
            }
            s.pid = 0;
            write_sweep_state(out, state);
        }
        if (!any_running && (stop_signal != 0 || next >= queue.size())) break;
        if (bar) {
            int64_t steps_now = 0;
            progress_figures(steps_now);
            int done = 0, failed = 0, running = 0;
            for (const SweepRunState& r : state.runs) {
                done += r.status == "done";
                failed += r.status == "failed";
                running += r.status == "running";
            }
            bar->update(static_cast<uint64_t>(std::max<int64_t>(0, steps_now - steps_before)),
                        fmt::format("{}/{} runs done, {} running{} | {:.4g} kWh, {:.3g} gCO2e",
                                    done, state.runs.size(), running,
                                    failed ? fmt::format(", {} failed", failed) : "",
                                    outcome.energy_j / 3.6e6, outcome.co2e_g));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    int64_t steps_now = 0;
    progress_figures(steps_now);
    for (const SweepRunState& r : state.runs) {
        outcome.done += r.status == "done";
        outcome.failed += r.status == "failed";
    }
    outcome.unfinished = static_cast<int>(state.runs.size()) - outcome.done - outcome.failed;
    outcome.stop_signal = stop_signal;
    outcome.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (bar) bar->finish();
    return outcome;
}

}  // namespace greenmoe::sweep

// `greenmoe energy`: run a command and report the energy and carbon it cost.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "commands.h"
#include "greenmoe/energy/emissions_csv.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/energy/energy_options.h"
#include "greenmoe/energy/process_usage.h"
#include "greenmoe/io/output_paths.h"

extern char** environ;

namespace greenmoe::cli {

namespace {

constexpr const char* kHelpFooter = R"(
Measured vs estimated:
  MEASURED energy comes from hardware counters, where the machine has them and
  greenmoe may read them: RAPL (CPU package and DRAM, /sys/class/powercap; Linux
  makes these root-only since 2020) and NVML (NVIDIA GPUs). Counters cover the
  whole machine, other processes included.
  ESTIMATED energy, for whatever no counter covers, follows the Green Algorithms
  model: the command's CPU time x the TDP per core of the CPU model in
  /proc/cpuinfo (Green Algorithms' TDP_cpu.csv; its 'Any' row, 12 W/core, when
  the model is not listed) + its peak resident memory x 0.3725 W/GB x time.
  Each source is labelled measured or estimated in the summary.
  PUE multiplies estimates (default 1.56, the table's 'Unknown' provider) but not
  measurements, unless --pue or a cloud provider/region is given; energy is shown
  with and without it. Carbon = kWh (with PUE) x the carbon intensity of
  --location (default WORLD, 475 gCO2e/kWh).
  The summary goes to stderr; the command's output and exit status pass through.
  Tables: Green Algorithms (Lannelongue, Grealey & Inouye, Adv. Sci. 2021), CC BY 4.0.

Example: greenmoe energy --location FR --csv emissions.csv -- ./train.sh)";

struct EnergyArgs {
    EnergyOptions energy;
    std::string csv;
    std::vector<std::string> command;
};

std::string shell_words(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        if (!out.empty()) out += ' ';
        const bool plain =
            !w.empty() && w.find_first_of(" \t\n'\"\\$`*?;&|<>()") == std::string::npos;
        out += plain ? w : "'" + w + "'";
    }
    return out;
}

// Ignores SIGINT and SIGQUIT for its lifetime, as system() does: Ctrl-C stops the command,
// and greenmoe lives on to report what it cost.
class IgnoreInterrupts {
  public:
    IgnoreInterrupts() {
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        sigemptyset(&ignore.sa_mask);
        sigaction(SIGINT, &ignore, &saved_int_);
        sigaction(SIGQUIT, &ignore, &saved_quit_);
    }
    ~IgnoreInterrupts() {
        sigaction(SIGINT, &saved_int_, nullptr);
        sigaction(SIGQUIT, &saved_quit_, nullptr);
    }
    IgnoreInterrupts(const IgnoreInterrupts&) = delete;
    IgnoreInterrupts& operator=(const IgnoreInterrupts&) = delete;

  private:
    struct sigaction saved_int_ {};
    struct sigaction saved_quit_ {};
};

int run_energy(const EnergyArgs& args) {
    if (!args.csv.empty()) check_output_file(args.csv, "--csv");
    auto child = std::make_shared<ChildUsage>();
    EnergyMonitor monitor(args.energy, [child] { return (*child)(); });

    std::vector<char*> argv;
    for (const auto& a : args.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGQUIT);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);

    std::fflush(stdout);
    std::fflush(stderr);
    int status = -1;
    {
        IgnoreInterrupts ignore;
        monitor.begin_window("command");
        pid_t pid = 0;
        const int error = posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), environ);
        posix_spawnattr_destroy(&attr);
        if (error != 0) {
            monitor.end_window("command");
            std::fprintf(stderr, "greenmoe energy: cannot run '%s': %s\n", argv[0],
                         std::error_code(error, std::generic_category()).message().c_str());
            return 127;
        }
        child->start(pid);
        status = child->wait();
    }
    const EnergyMeasurement m = monitor.end_window("command");

    int exit_code;
    std::string ended;
    if (status == -1) {
        exit_code = 1;
        ended = "could not be waited for";
    } else if (WIFEXITED(status)) {
        exit_code = WEXITSTATUS(status);
        ended = fmt::format("exited with status {}", exit_code);
    } else if (WIFSIGNALED(status)) {
        exit_code = 128 + WTERMSIG(status);
        ended = fmt::format("was killed by signal {}", WTERMSIG(status));
    } else {
        exit_code = 1;
        ended = "ended abnormally";
    }
    const ProcessUsage used = (*child)();
    const int cores = args.energy.cores > 0 ? args.energy.cores : monitor.host().usable_cpus;
    std::string text = fmt::format("greenmoe energy: `{}` {}\n", shell_words(args.command), ended);
    text += fmt::format(
        "  command    CPU time {:.3f} s (usage {:.2f} of {} cores), peak memory "
        "{:.3g} GB\n",
        used.cpu_seconds, m.seconds > 0.0 ? used.cpu_seconds / (m.seconds * cores) : 0.0, cores,
        used.peak_rss_bytes / (1024.0 * 1024.0 * 1024.0));
    text += monitor.report(m);
    if (!args.csv.empty() && monitor.enabled()) {
        EmissionsCsv(args.csv).append(monitor.emissions_row(m));
        text += fmt::format("  row appended to {}\n", args.csv);
    }
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
    return exit_code;
}

}  // namespace

void register_energy(CLI::App& app) {
    auto args = std::make_shared<EnergyArgs>();
    auto* cmd = app.add_subcommand(
        "energy",
        "run a command and report the time, energy (measured or estimated, per source), kWh "
        "and CO2e it cost");
    cmd->footer(kHelpFooter);
    add_energy_options(cmd, args->energy);
    cmd->add_option("--csv", args->csv,
                    "append a row for this run to FILE in CodeCarbon's emissions.csv format")
        ->type_name("FILE");
    cmd->add_option("command", args->command, "the command and its arguments, after --")
        ->required();
    cmd->callback([args] {
        const int code = run_energy(*args);
        // CLI11 returns a RuntimeError's code from main without printing anything.
        if (code != 0) throw CLI::RuntimeError(code);
    });
}

}  // namespace greenmoe::cli

// greenmoe: train, measure and simplify Mixture-of-Experts language models.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/dist/communicator.h"

namespace {

// Exit statuses: 1 for bad input data or a failed operation, 2 for a command line that
// cannot work (as in POSIX utilities and Python's argparse).
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// One line on stderr, "greenmoe: error: …", however many lines the message has.
void print_error(const std::string& message) {
    std::string line = message;
    for (char& c : line) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    std::fprintf(stderr, "greenmoe: error: %s\n", line.c_str());
}

// A CLI11 parse error in greenmoe's words, with where to read the command's options.
std::string describe_parse_error(CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
    std::vector<CLI::App*> parsed = app.get_subcommands();
    if (parsed.empty()) {
        // The first word that is not an option names the command: an unknown one?
        for (int i = 1; i < argc; ++i) {
            const std::string word = argv[i];
            if (word.empty() || word[0] == '-') continue;
            std::string known;
            for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
                known += (known.empty() ? "" : ", ") + sub->get_name();
            return "unknown command '" + word + "' (the commands are " + known +
                   "; see `greenmoe --help`)";
        }
        return std::string(e.what()) + " (see `greenmoe --help`)";
    }
    return std::string(e.what()) + " (see `greenmoe " + parsed.back()->get_name() + " --help`)";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "greenmoe: train GPT-2 style Mixture-of-Experts models on the CPU, measure what they\n"
        "cost (energy, CO2e) and what they are worth, and simplify them.\n"
        "Run `greenmoe <command> --help` for the options of each command."};
    app.require_subcommand(1);
    app.set_version_flag("--version", "greenmoe 0.1.0");
    greenmoe::cli::register_prepare(app);
    greenmoe::cli::register_tokenize(app);
    greenmoe::cli::register_train(app);
    greenmoe::cli::register_generate(app);
    greenmoe::cli::register_eval(app);
    greenmoe::cli::register_convert(app);
    greenmoe::cli::register_simplify(app);
    greenmoe::cli::register_prune_study(app);
    greenmoe::cli::register_energy(app);
    greenmoe::cli::register_bench(app);
    greenmoe::cli::register_sweep(app);
    greenmoe::cli::register_report(app);
    greenmoe::cli::register_logits(app);
    greenmoe::cli::register_merge_adapter(app);
    try {
        // Only training splits its work over ranks; under mpirun every other command would
        // run whole on each rank, each writing the same outputs.
        if (greenmoe::Communicator::launcher_ranks() > 1) {
            for (int i = 1; i < argc; ++i) {
                if (argv[i][0] == '-') continue;
                greenmoe::check(std::string(argv[i]) == "train",
                                "`greenmoe {}` runs in one process: start it without mpirun (only "
                                "`greenmoe train` runs on several ranks)",
                                argv[i]);
                break;
            }
        }
        app.parse(argc, argv);
    } catch (const CLI::RuntimeError& e) {
        // A command's own exit status (`energy` passes its command's on): nothing to print.
        return e.get_exit_code();
    } catch (const CLI::ParseError& e) {
        // --help and --version arrive as "errors" with a success status: CLI11 prints them.
        if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
        print_error(describe_parse_error(app, e, argc, argv));
        return kExitUsage;
    } catch (const greenmoe::UsageError& e) {
        print_error(e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        print_error(e.what());
        return kExitFailure;
    }
    return 0;
}

// greenmoe: train, measure and simplify Mixture-of-Experts language models.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "greenmoe/core/error.h"
#include "greenmoe/dist/communicator.h"

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
    greenmoe::cli::register_energy(app);
    greenmoe::cli::register_report(app);
    greenmoe::cli::register_logits(app);
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
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const greenmoe::Error& e) {
        std::fprintf(stderr, "greenmoe: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "greenmoe: error: %s\n", e.what());
        return 1;
    }
    return 0;
}

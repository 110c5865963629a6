// greenmoe: train, measure and simplify Mixture-of-Experts language models.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "greenmoe/core/error.h"

int main(int argc, char** argv) {
    CLI::App app{
        "greenmoe: train GPT-2 style Mixture-of-Experts models on the CPU, measure what they\n"
        "cost (energy, CO2e) and what they are worth, and simplify them.\n"
        "Run `greenmoe <command> --help` for the options of each command."};
    app.require_subcommand(1);
    app.set_version_flag("--version", "greenmoe 0.1.0");
    greenmoe::cli::register_prepare(app);
    greenmoe::cli::register_train(app);
    greenmoe::cli::register_generate(app);
    greenmoe::cli::register_eval(app);
    greenmoe::cli::register_convert(app);
    greenmoe::cli::register_simplify(app);
    greenmoe::cli::register_energy(app);
    greenmoe::cli::register_report(app);
    try {
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

// Each greenmoe command registers its CLI11 subcommand (options, help, callback) here.
#pragma once

#include <CLI/CLI.hpp>

namespace greenmoe::cli {

void register_prepare(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_train(CLI::App& app);
void register_generate(CLI::App& app);
void register_convert(CLI::App& app);
void register_eval(CLI::App& app);
void register_energy(CLI::App& app);
void register_bench(CLI::App& app);
void register_simplify(CLI::App& app);
void register_prune_study(CLI::App& app);
void register_report(CLI::App& app);
void register_sweep(CLI::App& app);
void register_logits(CLI::App& app);
void register_merge_adapter(CLI::App& app);

}  // namespace greenmoe::cli

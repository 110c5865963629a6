// The training loop (see trainer.h).
#include "greenmoe/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/energy/emissions_csv.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/eval/hellaswag.h"
#include "greenmoe/eval/hellaswag_files.h"
#include "greenmoe/eval/sampler.h"
#include "greenmoe/eval/val_loss.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/tokenizer_files.h"
#include "greenmoe/train/adamw.h"
#include "greenmoe/train/checkpoint.h"
#include "greenmoe/train/data_loader.h"
#include "greenmoe/train/lr_schedule.h"
#include "greenmoe/train/moe_step_stats.h"
#include "greenmoe/train/run_log.h"

namespace greenmoe {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// The fields that must not change between a run and its resume: they fix which tokens
// each step sees and what the model is.
void check_resume_compatible(const nlohmann::json& saved, const nlohmann::json& now,
                             const fs::path& checkpoint) {
    const char* fixed[][2] = {{"model", nullptr},   {"train", "batch_size"},
                              {"train", "seq_len"}, {"train", "total_batch_tokens"},
                              {"train", "seed"},    {"data", "dataset"},
                              {"data", "train"}};
    for (const auto& f : fixed) {
        const auto& a = f[1] ? saved.at(f[0]).at(f[1]) : saved.at(f[0]);
        const auto& b = f[1] ? now.at(f[0]).at(f[1]) : now.at(f[0]);
        const std::string key = f[1] ? fmt::format("{}.{}", f[0], f[1]) : f[0];
        check(a == b,
              "{}: cannot resume: {} was {} and is now {} (start a new run folder, or pass "
              "--no-resume)",
              checkpoint.string(), key, a.dump(), b.dump());
    }
}

constexpr uint64_t kMoeStream = 0x6d6f65;  // "moe"
constexpr double kBiasStopFraction = 0.97;

std::string format_count(double n) {
    if (n >= 1e9) return fmt::format("{:.2f}G", n / 1e9);
    if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
    if (n >= 1e3) return fmt::format("{:.1f}k", n / 1e3);
    return fmt::format("{:.0f}", n);
}

}  // namespace

TrainSummary train(const TrainConfig& config_in, const TrainOptions& options) {
    TrainConfig config = config_in;
    config.validate();
    check(!options.out_dir.empty(), "train: an output folder (--out) is required");
    fs::create_directories(options.out_dir);

    // Data.
    const DataLocations where = resolve_data_locations(options.data);
    std::string train_pattern = config.train_data, val_pattern = config.val_data;
    if (train_pattern.empty()) {
        const ShardPatterns p = prepare_named_dataset(config.dataset, where);
        train_pattern = p.train;
        if (val_pattern.empty()) val_pattern = p.val;
    }
    const int B = config.batch_size, T = config.seq_len;
    const int accum = config.grad_accum_steps();
    DataLoader loader(train_pattern, B, T);
    std::optional<ValidationSet> val_set;
    if (config.val_every > 0 && !val_pattern.empty()) {
        val_set.emplace(val_pattern, T, config.val_tokens);
    }

    // Model and optimizer.
    const fs::path init_from = options.init_from;
    if (!init_from.empty() && !fs::is_regular_file(init_from)) {
        config.model = read_hf_gpt2_config(init_from);
    } else if (!init_from.empty()) {
        config.model = read_gpt_weights_config(init_from);
    }
    config.model.finalize();
    const nlohmann::json config_json = train_config_to_json(config);
    GptModel model(config.model, B, T);
    AdamW optimizer(model.layout(), config.adamw);
    TrainState state;
    state.config = config_json;

    std::optional<fs::path> resume_from;
    if (options.resume) resume_from = latest_checkpoint(options.out_dir);
    if (resume_from) {
        check_resume_compatible(read_train_state(*resume_from).config, config_json, *resume_from);
        state = load_checkpoint(*resume_from, model, &optimizer);
        state.config = config_json;
        loader.set_position(state.data);
    } else if (!init_from.empty()) {
        if (fs::is_regular_file(init_from)) {
            load_gpt_weights(init_from, model);
        } else {
            load_hf_gpt2_weights(init_from, model);
        }
    } else {
        model.init_weights(config.seed);
    }
    write_file_atomic(options.out_dir / "config.json", config_json.dump(2) + "\n");

    std::optional<Gpt2Tokenizer> tokenizer;
    if (config.sample_every > 0 || config.hellaswag_every > 0)
        tokenizer = Gpt2Tokenizer::load(
            find_tokenizer_dir(where.tokenizer_dir.empty() ? "" : where.tokenizer_dir.string()));

    RunLog log(options.out_dir / "log.jsonl", resume_from ? state.step : 0);
    const int64_t start_step = state.step;
    const int64_t tokens_per_step = static_cast<int64_t>(B) * T * accum;
    log.write({{"type", "start"},
               {"resumed_from_step", start_step},
               {"parameters", model.num_parameters()},
               {"tokens_per_step", tokens_per_step},
               {"grad_accum_steps", accum},
               {"config", config_json}});
    if (!options.quiet) {
        std::fprintf(
            stderr,
            "greenmoe train: %s parameters, %d×%d tokens × %d micro-steps = %lld tokens "
            "per step, %lld steps%s\n",
            format_count(static_cast<double>(model.num_parameters())).c_str(), B, T, accum,
            static_cast<long long>(tokens_per_step), static_cast<long long>(config.max_steps),
            start_step > 0 ? fmt::format(" (resuming at step {})", start_step).c_str() : "");
    }

    if (config.model.mlp == "condmlp" && config.model.w_load == 0 &&
        config.model.w_importance == 0 && config.model.lambda_z == 0 &&
        config.model.w_penalty == 0 && !options.quiet) {
        std::fprintf(stderr,
                     "warning: condmlp with every auxiliary weight at 0: its guesser only learns "
                     "through the auxiliary losses, so it will never learn (set model.w_load, "
                     "w_importance, lambda_z or w_penalty)\n");
    }
    MoeStepStats moe_stats;
    LrSchedule schedule{config.lr, config.min_lr_ratio, config.warmup_steps, config.max_steps};
    std::vector<int> inputs(static_cast<size_t>(B) * T), targets(inputs.size());
    TrainSummary summary;
    double session_train_seconds = 0.0;
    int64_t session_steps = 0;
    const int64_t end_step = options.stop_at_step > 0
                                 ? std::min(options.stop_at_step, config.max_steps)
                                 : config.max_steps;

    // Energy of this segment (from here to the end of train()), added to what earlier
    // segments of the run spent (kept in the checkpoint, so it matches the log).
    EnergyMonitor energy(options.energy);
    energy.begin_window("run");
    double prior_joules = 0.0, prior_co2e_g = 0.0;
    if (state.extra.contains("energy")) {
        prior_joules = state.extra["energy"].value("joules", 0.0);
        prior_co2e_g = state.extra["energy"].value("co2e_g", 0.0);
    }
    auto energy_fields = [&](const EnergyMeasurement& m, nlohmann::json& record) {
        if (!energy.enabled()) return;
        const double joules = prior_joules + m.total_joules_with_pue;
        record["energy_j"] = joules;
        record["co2e_g"] = prior_co2e_g + m.co2e_g;
        record["j_per_token"] =
            state.tokens_seen > 0 ? joules / static_cast<double>(state.tokens_seen) : 0.0;
        record["energy_source"] = m.source_label;
    };

    // Validation at the start of a step (before its update) and once more at the end.
    auto run_validation = [&](int64_t step) {
        const auto t0 = Clock::now();
        model.set_training(false);
        const double val_loss = validation_loss(model, *val_set);
        model.set_training(true);
        summary.final_val_loss = val_loss;
        log.write({{"type", "val"},
                   {"step", step},
                   {"val_loss", val_loss},
                   {"val_tokens", val_set->num_tokens()},
                   {"seconds", seconds_since(t0)}});
        if (!options.quiet) {
            std::fprintf(stderr, "step %5lld | val loss %.4f\n", static_cast<long long>(step),
                         val_loss);
        }
    };
    // HellaSwag with the current weights; the items are read once, at the first use.
    std::vector<HellaSwagItem> hellaswag_items;
    auto run_hellaswag = [&](int64_t step) {
        if (hellaswag_items.empty()) {
            const fs::path file = find_or_fetch_hellaswag(config.hellaswag_data, where);
            hellaswag_items = read_hellaswag(file, static_cast<size_t>(config.hellaswag_limit));
            check(!hellaswag_items.empty(), "{}: no HellaSwag items", file.string());
        }
        HellaSwagOptions ho;
        ho.progress = !options.quiet;
        const HellaSwagResult r = evaluate_hellaswag(model, *tokenizer, hellaswag_items, ho);
        summary.final_hellaswag_acc_norm = r.acc_norm();
        log.write({{"type", "eval"},
                   {"step", step},
                   {"task", "hellaswag"},
                   {"items", r.items},
                   {"acc", r.acc()},
                   {"acc_norm", r.acc_norm()},
                   {"harness_acc", r.harness_acc()},
                   {"harness_acc_norm", r.harness_acc_norm()},
                   {"seconds", r.seconds}});
        if (!options.quiet) {
            std::fprintf(stderr,
                         "step %5lld | hellaswag %lld items: acc %.4f acc_norm %.4f (harness "
                         "%.4f / %.4f)\n",
                         static_cast<long long>(step), static_cast<long long>(r.items), r.acc(),
                         r.acc_norm(), r.harness_acc(), r.harness_acc_norm());
        }
    };
    auto save = [&]() {
        state.data = loader.position();
        if (energy.enabled()) {
            const EnergyMeasurement m = energy.peek("run");
            state.extra["energy"] = {{"joules", prior_joules + m.total_joules_with_pue},
                                     {"co2e_g", prior_co2e_g + m.co2e_g}};
        }
        summary.last_checkpoint =
            save_checkpoint(options.out_dir, model, optimizer, state, config.keep_checkpoints);
    };

    const auto loop_start = Clock::now();
    for (int64_t step = start_step; step < end_step; ++step) {
        const bool last = step == config.max_steps - 1;
        if (val_set && step % config.val_every == 0) run_validation(step);
        if (config.hellaswag_every > 0 && step > 0 && step % config.hellaswag_every == 0) {
            run_hellaswag(step);
        }
        if (config.sample_every > 0 && step > 0 && (step % config.sample_every == 0 || last)) {
            SampleOptions so;
            so.max_new_tokens = config.sample_tokens;
            so.temperature = config.temperature;
            so.top_k = config.top_k;
            so.seed = rng_key(config.seed, static_cast<uint64_t>(step));
            std::vector<int> prompt = config.sample_prompt.empty()
                                          ? std::vector<int>{tokenizer->eot_token()}
                                          : tokenizer->encode(config.sample_prompt);
            model.set_training(false);
            const std::vector<int> out = generate(model, prompt, so);
            model.set_training(true);
            const std::string text = config.sample_prompt + tokenizer->decode(out);
            log.write({{"type", "sample"}, {"step", step}, {"text", text}});
            if (!options.quiet)
                std::fprintf(stderr, "step %lld | sample: %s\n", static_cast<long long>(step),
                             text.c_str());
        }

        // One optimizer step over `accum` micro-batches.
        const auto t0 = Clock::now();
        model.zero_grad();
        double loss_sum = 0.0, aux_sum = 0.0;
        moe_stats.reset(model);
        for (int micro = 0; micro < accum; ++micro) {
            loader.next_batch(inputs.data(), targets.data());
            model.set_rng_key(rng_key(config.seed, kMoeStream, static_cast<uint64_t>(step),
                                      static_cast<uint64_t>(micro)));
            loss_sum += model.forward(inputs.data(), targets.data(), B, T);
            aux_sum += model.aux_loss();
            moe_stats.add(model);
            model.backward(1.0f / static_cast<float>(accum));
        }
        const double loss = loss_sum / accum;
        const double aux = aux_sum / accum;
        check(std::isfinite(loss), "training diverged: loss is {} at step {}", loss, step);
        const double norm = grad_norm(model.grads(), model.layout());
        if (config.grad_clip > 0) clip_grads(model.grads(), model.layout(), norm, config.grad_clip);
        const float lr = schedule.at(step);
        optimizer.step(model.params(), model.grads(), lr);
        // DeepSeek's loss-free balancing: this step's counts move the bias, until 97 % of
        // the planned steps; the counts are cleared either way.
        const bool bias_on = config.model.bias_gamma > 0 &&
                             static_cast<double>(step) < kBiasStopFraction * config.max_steps;
        model.update_moe_bias(bias_on ? config.model.bias_gamma : 0.0f);
        const double dt = seconds_since(t0);

        state.step = step + 1;
        state.tokens_seen += tokens_per_step;
        state.train_seconds += dt;
        session_train_seconds += dt;
        session_steps += 1;
        summary.final_train_loss = loss;
        const double tok_per_s = static_cast<double>(tokens_per_step) / dt;

        if (step % config.log_every == 0 || last || step + 1 == end_step) {
            nlohmann::json record = {{"type", "train"},
                                     {"step", step},
                                     {"loss", loss},
                                     {"lr", lr},
                                     {"grad_norm", norm},
                                     {"tokens", state.tokens_seen},
                                     {"tokens_per_s", tok_per_s},
                                     {"step_ms", dt * 1e3},
                                     {"train_seconds", state.train_seconds}};
            if (model.num_moe_layers() > 0) {
                record["aux_loss"] = aux;
                record["moe"] = moe_stats.to_json(model);
            }
            const EnergyMeasurement so_far = energy.peek("run");
            energy_fields(so_far, record);
            log.write(record);
            if (!options.quiet) {
                // Wall time per step so far, validation and samples included.
                const double avg = seconds_since(loop_start) / static_cast<double>(session_steps);
                std::fprintf(
                    stderr,
                    "step %5lld/%lld | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s | "
                    "%.0f ms | ETA %s%s%s\n",
                    static_cast<long long>(step + 1), static_cast<long long>(config.max_steps),
                    loss, lr, norm, tok_per_s, dt * 1e3,
                    ProgressBar::format_duration(avg *
                                                 static_cast<double>(config.max_steps - step - 1))
                        .c_str(),
                    model.num_moe_layers() > 0 ? moe_stats.summary(aux).c_str() : "",
                    energy.enabled() ? (" | " + energy.progress_text(so_far)).c_str() : "");
            }
        }
        if ((config.checkpoint_every > 0 && state.step % config.checkpoint_every == 0) ||
            state.step == end_step) {
            save();
        }
    }
    const EnergyMeasurement segment = energy.end_window("run");
    if (energy.enabled()) {
        EmissionsCsv(options.out_dir / "emissions.csv").append(energy.emissions_row(segment));
        summary.energy_joules = prior_joules + segment.total_joules_with_pue;
        summary.co2e_g = prior_co2e_g + segment.co2e_g;
    }
    summary.steps_done = state.step;
    summary.tokens_per_second =
        session_train_seconds > 0
            ? static_cast<double>(session_steps * tokens_per_step) / session_train_seconds
            : 0.0;
    if (state.step >= config.max_steps && start_step < config.max_steps) {
        if (val_set) run_validation(state.step);
        if (config.hellaswag_every > 0) run_hellaswag(state.step);
        nlohmann::json done = {{"type", "done"},
                               {"step", state.step},
                               {"train_loss", summary.final_train_loss},
                               {"tokens", state.tokens_seen},
                               {"train_seconds", state.train_seconds}};
        if (summary.final_val_loss >= 0) done["val_loss"] = summary.final_val_loss;
        if (summary.final_hellaswag_acc_norm >= 0) {
            done["hellaswag_acc_norm"] = summary.final_hellaswag_acc_norm;
        }
        energy_fields(segment, done);
        log.write(done);
    }
    if (!options.quiet) {
        std::fprintf(stderr, "done: %lld steps, %s tokens, train loss %.4f%s, %.0f tok/s\n",
                     static_cast<long long>(state.step),
                     format_count(static_cast<double>(state.tokens_seen)).c_str(),
                     summary.final_train_loss,
                     summary.final_val_loss >= 0
                         ? fmt::format(", val loss {:.4f}", summary.final_val_loss).c_str()
                         : "",
                     summary.tokens_per_second);
        if (energy.enabled()) std::fprintf(stderr, "%s\n", energy.summary_line(segment).c_str());
    }
    return summary;
}

}  // namespace greenmoe

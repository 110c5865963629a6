// The training loop (see trainer.h).
#include "greenmoe/train/trainer.h"

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
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
#include "greenmoe/io/run_lock.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/model/model_loader.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/tokenizer_files.h"
#include "greenmoe/train/adamw.h"
#include "greenmoe/train/checkpoint.h"
#include "greenmoe/train/data_loader.h"
#include "greenmoe/train/data_parallel.h"
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

    // The ranks of a data-parallel job. Only the root writes (logs, samples, checkpoints,
    // emissions) and prints; every rank runs the same steps and collectives in order.
    Communicator single;
    Communicator& comm = options.comm != nullptr ? *options.comm : single;
    const int world = comm.size(), rank = comm.rank();
    const bool root = comm.is_root();
    const bool quiet = options.quiet || !root;
    // One process at a time per run folder, for as long as this one runs: a second train
    // into it would overwrite the checkpoints and the log. Under the lock, the leftovers of
    // a save that a killed run never finished can go.
    std::optional<RunLock> run_lock;
    if (root) {
        fs::create_directories(options.out_dir);
        run_lock.emplace(options.out_dir);
        const int unfinished = remove_unfinished_checkpoints(options.out_dir);
        if (unfinished > 0 && !quiet) {
            std::fprintf(stderr,
                         "greenmoe train: removed %d unfinished checkpoint save%s (.tmp_step_*) "
                         "left by an interrupted run\n",
                         unfinished, unfinished == 1 ? "" : "s");
        }
    }
    // Work that writes shared files (downloads, tokenized shards) happens on the root
    // first; the other ranks then find it done. The wait has no bound: a first download
    // can take long, and a root that dies ends the job through the launcher anyway.
    auto root_first = [&](const char* what, const auto& work) {
        if (!root) comm.barrier(what, 0.0);
        work();
        if (root) comm.barrier(what, 0.0);
    };

    // Data.
    const DataLocations where = resolve_data_locations(options.data);
    std::string train_pattern = config.train_data, val_pattern = config.val_data;
    if (train_pattern.empty()) {
        root_first("preparing the dataset", [&] {
            const ShardPatterns p = prepare_named_dataset(config.dataset, where);
            train_pattern = p.train;
            if (val_pattern.empty()) val_pattern = p.val;
        });
    }
    const int B = config.batch_size, T = config.seq_len;
    const int accum = config.grad_accum_steps(world);
    DataLoader loader(train_pattern, B, T, rank, world);
    std::optional<ValidationSet> val_set;
    if (config.val_every > 0 && !val_pattern.empty()) {
        val_set.emplace(val_pattern, T, config.val_tokens);
    }

    // Model and optimizer.
    // Starting weights (fine-tuning, or healing a simplified model): their config replaces
    // the model section, pruned expert counts included. The root reads them and sends
    // them, so that other hosts need not have the files.
    std::optional<ModelSource> init_source;
    if (!options.init_from.empty()) {
        std::string model_json;
        if (root) {
            init_source = find_model_source(options.init_from);
            model_json = nlohmann::json(read_model_config(*init_source)).dump();
        }
        comm.broadcast(model_json, "the starting model's config");
        from_json(nlohmann::json::parse(model_json), config.model);
    }
    config.model.finalize();
    const nlohmann::json config_json = train_config_to_json(config);
    GptModel model(config.model, B, T);
    const size_t n_floats = model.layout().total_floats();
    // ZeRO stage 1: each rank keeps the moments of its own shard of the parameters.
    const bool sharded = options.shard_optimizer && world > 1;
    const std::vector<size_t> shards = optimizer_shards(n_floats, sharded ? world : 1);
    AdamW optimizer = sharded ? AdamW(model.layout(), config.adamw, shards[size_t(rank)],
                                      shards[size_t(rank) + 1])
                              : AdamW(model.layout(), config.adamw);
    TrainState state;
    state.config = config_json;

    // The root resumes or initializes; every rank then starts from its weights, bias,
    // moments and position.
    int64_t resumed = 0;  // 1 when resuming (an int64 so that it can be broadcast)
    int64_t adam_step = 0;
    std::optional<AdamW> full_moments;  // the root's whole moments, under ZeRO
    if (root) {
        std::optional<fs::path> resume_from;
        if (options.resume) resume_from = latest_checkpoint(options.out_dir);
        if (resume_from) {
            check_resume_compatible(read_train_state(*resume_from).config, config_json,
                                    *resume_from);
            if (sharded) full_moments.emplace(model.layout(), config.adamw);
            state = load_checkpoint(*resume_from, model, sharded ? &*full_moments : &optimizer);
            state.config = config_json;
            adam_step = sharded ? full_moments->step_count() : optimizer.step_count();
            resumed = 1;
        } else if (init_source) {
            load_model_weights(*init_source, model);
        } else {
            model.init_weights(config.seed);
        }
    }
    if (world > 1) {
        comm.broadcast(std::as_writable_bytes(std::span<int64_t>(&resumed, 1)), "the resume flag");
        broadcast_train_state(comm, state, adam_step);
        comm.broadcast(std::as_writable_bytes(std::span<float>(model.params(), n_floats)),
                       "the parameters");
        comm.broadcast(
            std::as_writable_bytes(std::span<float>(model.moe_bias(), model.moe_bias_size())),
            "the routing bias");
        if (resumed && sharded) {
            comm.scatter_pieces(root ? full_moments->m() : nullptr, optimizer.m(), shards,
                                "the optimizer moments");
            comm.scatter_pieces(root ? full_moments->v() : nullptr, optimizer.v(), shards,
                                "the optimizer moments");
        } else if (resumed) {
            comm.broadcast(std::as_writable_bytes(std::span<float>(optimizer.m(), n_floats)),
                           "the optimizer moments");
            comm.broadcast(std::as_writable_bytes(std::span<float>(optimizer.v(), n_floats)),
                           "the optimizer moments");
        }
        optimizer.set_step_count(adam_step);
        full_moments.reset();
    }
    if (resumed) loader.set_position(state.data);
    if (root) write_file_atomic(options.out_dir / "config.json", config_json.dump(2) + "\n");

    std::optional<Gpt2Tokenizer> tokenizer;
    if ((config.sample_every > 0 && root) || config.hellaswag_every > 0)
        tokenizer = Gpt2Tokenizer::load(
            find_tokenizer_dir(where.tokenizer_dir.empty() ? "" : where.tokenizer_dir.string()));

    std::optional<RunLog> run_log;
    if (root) {
        run_log.emplace(options.out_dir / "log.jsonl", resumed ? state.step : 0);
        if (!run_log->warning().empty() && !quiet)
            std::fprintf(stderr, "warning: %s\n", run_log->warning().c_str());
    }
    auto log_write = [&](const nlohmann::json& record) {
        if (run_log) run_log->write(record);
    };
    const int64_t start_step = state.step;
    const int64_t tokens_per_step = static_cast<int64_t>(B) * T * accum * world;
    nlohmann::json start = {{"type", "start"},
                            {"resumed_from_step", start_step},
                            {"parameters", model.num_parameters()},
                            {"tokens_per_step", tokens_per_step},
                            {"grad_accum_steps", accum},
                            {"config", config_json}};
    if (world > 1) {
        start["ranks"] = world;
        start["shard_optimizer"] = sharded;
        start["overlap_gradient_sums"] = options.overlap_communication;
    }
    log_write(start);
    if (!quiet) {
        std::fprintf(
            stderr,
            "greenmoe train: %s parameters, %d×%d tokens × %d micro-steps%s = %lld tokens "
            "per step, %lld steps%s\n",
            format_count(static_cast<double>(model.num_parameters())).c_str(), B, T, accum,
            world > 1 ? fmt::format(" × {} ranks", world).c_str() : "",
            static_cast<long long>(tokens_per_step), static_cast<long long>(config.max_steps),
            start_step > 0 ? fmt::format(" (resuming at step {})", start_step).c_str() : "");
    }

    if (config.model.mlp == "condmlp" && config.model.w_load == 0 &&
        config.model.w_importance == 0 && config.model.lambda_z == 0 &&
        config.model.w_penalty == 0 && !quiet) {
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
    // The job's energy so far: every rank's, summed (a collective: all ranks call it).
    auto energy_fields = [&](const JobEnergy& job, nlohmann::json& record) {
        if (!energy.enabled()) return;
        const double joules = prior_joules + job.joules_with_pue;
        record["energy_j"] = joules;
        record["co2e_g"] = prior_co2e_g + job.co2e_g;
        record["j_per_token"] =
            state.tokens_seen > 0 ? joules / static_cast<double>(state.tokens_seen) : 0.0;
        record["energy_source"] = job.total.source_label;
        if (world > 1) record["energy_j_per_rank"] = job.joules_per_rank;
    };
    auto job_energy = [&](const EnergyMeasurement& mine) {
        return energy.enabled() ? sum_energy(comm, mine) : JobEnergy{};
    };

    // Validation at the start of a step (before its update) and once more at the end.
    // Each rank scores its share of the sequences; the sums are added up.
    auto run_validation = [&](int64_t step) {
        const auto t0 = Clock::now();
        model.set_training(false);
        const std::vector<size_t> part = comm.split(val_set->num_sequences());
        double sum =
            validation_loss_sum(model, *val_set, part[size_t(rank)], part[size_t(rank) + 1]);
        comm.all_reduce_sum(std::span<double>(&sum, 1), "the validation loss");
        const double val_loss = sum / static_cast<double>(val_set->num_tokens());
        model.set_training(true);
        summary.final_val_loss = val_loss;
        log_write({{"type", "val"},
                   {"step", step},
                   {"val_loss", val_loss},
                   {"val_tokens", val_set->num_tokens()},
                   {"seconds", seconds_since(t0)}});
        if (!quiet) {
            std::fprintf(stderr, "step %5lld | val loss %.4f\n", static_cast<long long>(step),
                         val_loss);
        }
    };
    // HellaSwag with the current weights; the items are read once, at the first use.
    std::vector<HellaSwagItem> hellaswag_items;
    // Each rank scores its share of the items; the counts are added up.
    auto run_hellaswag = [&](int64_t step) {
        if (hellaswag_items.empty()) {
            fs::path file;
            root_first("fetching HellaSwag",
                       [&] { file = find_or_fetch_hellaswag(config.hellaswag_data, where); });
            hellaswag_items = read_hellaswag(file, static_cast<size_t>(config.hellaswag_limit));
            check(!hellaswag_items.empty(), "{}: no HellaSwag items", file.string());
        }
        HellaSwagOptions ho;
        ho.progress = !quiet;
        const std::vector<size_t> part = comm.split(hellaswag_items.size());
        const std::vector<HellaSwagItem> mine(
            hellaswag_items.begin() + static_cast<std::ptrdiff_t>(part[size_t(rank)]),
            hellaswag_items.begin() + static_cast<std::ptrdiff_t>(part[size_t(rank) + 1]));
        // A rank left without items (fewer items than ranks) adds zeros.
        HellaSwagResult r =
            mine.empty() ? HellaSwagResult{} : evaluate_hellaswag(model, *tokenizer, mine, ho);
        std::array<int64_t, 6> counts = {
            r.items,    r.correct, r.correct_norm, r.harness_correct, r.harness_correct_norm,
            r.truncated};
        comm.all_reduce_sum(std::span<int64_t>(counts), "the HellaSwag scores");
        r.items = counts[0];
        r.correct = counts[1];
        r.correct_norm = counts[2];
        r.harness_correct = counts[3];
        r.harness_correct_norm = counts[4];
        r.truncated = counts[5];
        summary.final_hellaswag_acc_norm = r.acc_norm();
        log_write({{"type", "eval"},
                   {"step", step},
                   {"task", "hellaswag"},
                   {"items", r.items},
                   {"acc", r.acc()},
                   {"acc_norm", r.acc_norm()},
                   {"harness_acc", r.harness_acc()},
                   {"harness_acc_norm", r.harness_acc_norm()},
                   {"seconds", r.seconds}});
        if (!quiet) {
            std::fprintf(stderr,
                         "step %5lld | hellaswag %lld items: acc %.4f acc_norm %.4f (harness "
                         "%.4f / %.4f)\n",
                         static_cast<long long>(step), static_cast<long long>(r.items), r.acc(),
                         r.acc_norm(), r.harness_acc(), r.harness_acc_norm());
        }
    };
    // Every rank takes part (the energy sum, the moments of ZeRO shards); the root writes.
    auto save = [&]() {
        state.data = loader.position();
        if (energy.enabled()) {
            const JobEnergy job = job_energy(energy.peek("run"));
            state.extra["energy"] = {{"joules", prior_joules + job.joules_with_pue},
                                     {"co2e_g", prior_co2e_g + job.co2e_g}};
        }
        if (sharded) {
            std::optional<AdamW> whole;
            if (root) whole.emplace(model.layout(), config.adamw);
            comm.gather_pieces(optimizer.m(), root ? whole->m() : nullptr, shards,
                               "the optimizer moments");
            comm.gather_pieces(optimizer.v(), root ? whole->v() : nullptr, shards,
                               "the optimizer moments");
            if (root) {
                whole->set_step_count(optimizer.step_count());
                summary.last_checkpoint =
                    save_checkpoint(options.out_dir, model, *whole, state, config.keep_checkpoints);
            }
        } else if (root) {
            summary.last_checkpoint =
                save_checkpoint(options.out_dir, model, optimizer, state, config.keep_checkpoints);
        }
    };

    GradientSync gradient_sync(comm, model, options.overlap_communication);
    const auto loop_start = Clock::now();
    for (int64_t step = start_step; step < end_step; ++step) {
        const bool last = step == config.max_steps - 1;
        if (val_set && step % config.val_every == 0) run_validation(step);
        if (config.hellaswag_every > 0 && step > 0 && step % config.hellaswag_every == 0) {
            run_hellaswag(step);
        }
        if (root && config.sample_every > 0 && step > 0 &&
            (step % config.sample_every == 0 || last)) {
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
            log_write({{"type", "sample"}, {"step", step}, {"text", text}});
            if (!quiet)
                std::fprintf(stderr, "step %lld | sample: %s\n", static_cast<long long>(step),
                             text.c_str());
        }

        // One optimizer step over `accum` micro-batches on each of the `world` ranks. Rank r's
        // micro-step m is the job's micro-batch m·world + r: its window of the data and its
        // routing noise are those one process would use for it, whatever the rank count.
        const auto t0 = Clock::now();
        comm.take_wait_seconds();
        model.zero_grad();
        double sums[2] = {0.0, 0.0};  // loss, auxiliary loss
        moe_stats.reset(model);
        const float scale = 1.0f / static_cast<float>(accum * world);
        for (int micro = 0; micro < accum; ++micro) {
            loader.next_batch(inputs.data(), targets.data());
            const auto job_micro = static_cast<uint64_t>(micro) * uint64_t(world) + uint64_t(rank);
            model.set_rng_key(
                rng_key(config.seed, kMoeStream, static_cast<uint64_t>(step), job_micro));
            sums[0] += model.forward(inputs.data(), targets.data(), B, T);
            sums[1] += model.aux_loss();
            moe_stats.add(model);
            // The gradient is complete after the last micro-step: its sums start there.
            model.backward(scale, micro == accum - 1 ? gradient_sync.block_done()
                                                     : std::function<void(int)>());
        }
        gradient_sync.finish();
        comm.all_reduce_sum(std::span<double>(sums, 2), "the loss");
        all_reduce_moe_stats(comm, model, moe_stats);
        const double loss = sums[0] / (accum * world);
        const double aux = sums[1] / (accum * world);
        check(std::isfinite(loss), "training diverged: loss is {} at step {}", loss, step);
        const double norm = grad_norm(model.grads(), model.layout());
        if (config.grad_clip > 0) clip_grads(model.grads(), model.layout(), norm, config.grad_clip);
        const float lr = schedule.at(step);
        optimizer.step(model.params(), model.grads(), lr);
        if (sharded) comm.all_gather_pieces(model.params(), shards, "the updated parameters");
        const double comm_seconds = comm.take_wait_seconds();
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
            if (world > 1) record["comm_wait_ms"] = comm_seconds * 1e3;
            if (model.num_moe_layers() > 0) {
                record["aux_loss"] = aux;
                record["moe"] = moe_stats.to_json(model);
            }
            const EnergyMeasurement so_far = energy.peek("run");
            const JobEnergy job_so_far = job_energy(so_far);
            energy_fields(job_so_far, record);
            log_write(record);
            if (!quiet) {
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
                    energy.enabled() ? (" | " + energy.progress_text(job_so_far.total)).c_str()
                                     : "");
            }
        }
        if ((config.checkpoint_every > 0 && state.step % config.checkpoint_every == 0) ||
            state.step == end_step) {
            save();
        }
    }
    const JobEnergy segment = job_energy(energy.end_window("run"));
    if (energy.enabled()) {
        if (root) {
            EmissionsCsv(options.out_dir / "emissions.csv")
                .append(energy.emissions_row(segment.total));
        }
        summary.energy_joules = prior_joules + segment.joules_with_pue;
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
        log_write(done);
    }
    if (!quiet) {
        std::fprintf(stderr, "done: %lld steps, %s tokens, train loss %.4f%s, %.0f tok/s\n",
                     static_cast<long long>(state.step),
                     format_count(static_cast<double>(state.tokens_seen)).c_str(),
                     summary.final_train_loss,
                     summary.final_val_loss >= 0
                         ? fmt::format(", val loss {:.4f}", summary.final_val_loss).c_str()
                         : "",
                     summary.tokens_per_second);
        if (energy.enabled()) {
            std::fprintf(stderr, "%s\n", energy.summary_line(segment.total).c_str());
        }
    }
    return summary;
}

}  // namespace greenmoe

// The training loop (see trainer.h): train() reads like nanoGPT's loop, and each part of
// it (setting up, resuming, a step, each periodic job, the end) is a named Trainer method.
#include "greenmoe/train/trainer.h"

#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <map>
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
#include "greenmoe/io/stop_signal.h"
#include "greenmoe/io/system_memory.h"
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
#include "greenmoe/train/resume_settings.h"
#include "greenmoe/train/run_folder.h"
#include "greenmoe/train/run_log.h"

namespace greenmoe {

namespace fs = std::filesystem;

double estimate_training_bytes(const GptConfig& m, int batch, int seq) {
    // Doubles throughout: the point is to refuse n_layer = 1e9 without overflowing.
    const double C = m.n_embd, L = m.n_layer, NH = m.n_head, H = m.hidden(), E = m.n_experts;
    const double V = m.padded_vocab_size > 0 ? m.padded_vocab_size : pad_vocab_size(m.vocab_size);
    const double moe_blocks = m.mlp == "dense" ? 0.0 : std::floor(L / m.moe_every);
    const double dense_blocks = L - moe_blocks;
    const double per_block = 8 * C + 4 * C * C;  // LayerNorms, attention
    const double params = V * C + m.block_size * C + 2 * C + L * per_block +
                          dense_blocks * (8 * C * C + 5 * C) +
                          moe_blocks * (E * (2 * C * H + H + C) + C * E + E);
    const double B = batch, T = seq, BT = B * T;
    const double routed = m.mlp == "dense" ? 0.0 : BT * m.choices_per_token() * m.capacity_factor;
    const double activations = L * (8 * BT * C + 4 * BT + B * NH * T * T) +
                               dense_blocks * 8 * BT * C + moe_blocks * routed * (2 * H + 2 * C) +
                               BT * V + 14 * BT * C + B * NH * T * T;
    return 4.0 * (4.0 * params + activations);  // fp32: parameters, gradients, m, v
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kMoeStream = 0x6d6f65;  // "moe"
constexpr double kBiasStopFraction = 0.97;

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string format_count(double n) {
    if (n >= 1e9) return fmt::format("{:.2f}G", n / 1e9);
    if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
    if (n >= 1e3) return fmt::format("{:.1f}k", n / 1e3);
    return fmt::format("{:.0f}", n);
}

// ---- Resuming ----------------------------------------------------------------------

// Settings that fix what the model is and which tokens each step sees: a resume can
// never change them.
bool fixed_on_resume(const std::string& key) {
    return key.starts_with("model.") || key == "model" || key == "train.batch_size" ||
           key == "train.seq_len" || key == "train.total_batch_tokens" || key == "train.seed" ||
           key == "data.dataset" || key == "data.train";
}

// ---- Starting from other weights ---------------------------------------------------

// Model keys that steer routing or the loss but do not change what the weights are: the
// command line may set them for a model that starts from other weights.
bool model_tunable(const std::string& key) {
    return key == "capacity_factor" || key == "eval_capacity_factor" ||
           key == "condmlp_eval_sample" || key == "w_load" || key == "w_importance" ||
           key == "lambda_z" || key == "w_penalty" || key == "bias_gamma";
}

// The kept experts per layer of a `greenmoe simplify` summary.json, in the numbering of
// the model it pruned: {"layer": [indices]}.
std::map<int, std::vector<int>> kept_experts_of(const nlohmann::json& summary) {
    std::map<int, std::vector<int>> kept;
    const auto layers = summary.find("layers");
    if (layers == summary.end() || !layers->is_array()) return kept;
    for (const auto& l : *layers) {
        if (!l.is_object() || !l.contains("layer") || !l.contains("kept")) continue;
        try {
            kept[l.at("layer").get<int>()] = l.at("kept").get<std::vector<int>>();
        } catch (const nlohmann::json::exception&) {
            continue;
        }
    }
    return kept;
}

// The run that `init_from` came from, and what it cost when its emissions.csv is there. A
// `greenmoe simplify` output is followed (its summary.json) to the model it pruned, and its
// kept experts are recorded in the original model's numbering.
nlohmann::json describe_parent(const std::string& init_from, const ModelSource& source) {
    const fs::path path = fs::absolute(init_from).lexically_normal();
    nlohmann::json j = {{"path", path.string()},
                        {"weights", fs::absolute(source.weights).lexically_normal().string()},
                        {"format", source.greenmoe ? "greenmoe" : "huggingface-gpt2"}};
    fs::path dir = fs::is_directory(path) ? path : path.parent_path();
    std::map<int, std::vector<int>> kept;  // composed over repeated prunings
    for (int hops = 0; hops < 8 && !fs::exists(dir / "emissions.csv"); ++hops) {
        const fs::path summary_file = dir / "summary.json";
        if (!fs::is_regular_file(summary_file)) break;
        const auto summary = nlohmann::json::parse(read_file(summary_file), nullptr, false);
        if (!summary.is_object() || !summary.contains("model_absolute") ||
            !summary["model_absolute"].is_string()) {
            break;
        }
        const std::map<int, std::vector<int>> here = kept_experts_of(summary);
        if (hops == 0) {
            kept = here;
            j["simplified"] = {{"summary", summary_file.string()},
                               {"criterion", summary.value("criterion", "")},
                               {"mode", summary.value("mode", "")}};
        } else {
            // An earlier pruning: its kept list maps this one's numbers to the original's.
            for (auto& [layer, experts] : kept) {
                const auto it = here.find(layer);
                if (it == here.end()) continue;
                for (int& e : experts) {
                    if (e >= 0 && static_cast<size_t>(e) < it->second.size())
                        e = it->second[static_cast<size_t>(e)];
                }
            }
        }
        const fs::path from = summary["model_absolute"].get<std::string>();
        j["simplified_from"] = from.string();
        dir = fs::is_directory(from) ? from : from.parent_path();
    }
    if (!kept.empty()) {
        nlohmann::json by_layer = nlohmann::json::object();
        for (const auto& [layer, experts] : kept) by_layer[std::to_string(layer)] = experts;
        j["simplified"]["kept_experts"] = by_layer;
    }
    // A run folder holds emissions.csv; a checkpoint sits two levels below it.
    if (!fs::exists(dir / "emissions.csv") && dir.parent_path().filename() == "checkpoints") {
        dir = dir.parent_path().parent_path();
    }
    const fs::path csv = dir / "emissions.csv";
    if (!fs::is_regular_file(csv)) return j;
    j["run"] = dir.string();
    try {
        const EmissionsTotals t = EmissionsCsv(csv).totals();
        j["emissions_csv"] = csv.string();
        j["co2e_g"] = t.emissions_kg * 1e3;
        j["energy_kwh"] = t.energy_consumed_kwh;
        j["segments"] = t.segments;
    } catch (const Error& e) {
        j["emissions_csv_error"] = e.what();
    }
    return j;
}

// ---- The trainer -------------------------------------------------------------------

struct StepResult {
    double loss = 0.0, aux = 0.0, grad_norm = 0.0;
    float lr = 0.0f;
    double seconds = 0.0, comm_seconds = 0.0;
};

class Trainer {
  public:
    Trainer(const TrainConfig& config, const TrainOptions& options);

    void resume_or_initialize();
    void start_log();
    int64_t start_step() const { return start_step_; }
    int64_t end_step() const { return end_step_; }

    void run_due_evaluations(int64_t step);
    StepResult train_step(int64_t step);
    bool log_due(int64_t step) const;
    void log_step(int64_t step, const StepResult& r);
    bool checkpoint_due() const;
    void save_checkpoint();
    int stop_requested();
    TrainSummary finish(int stop_signal);

  private:
    void claim_run_folder();
    void record_lost_segment();
    void set_up_data();
    void take_model_from_initial_weights();
    void set_up_model();
    void broadcast_start(int64_t& resumed, int64_t adam_step, std::optional<AdamW>& full_moments);
    void say_what_runs() const;
    void validate(int64_t step);
    void hellaswag(int64_t step);
    void sample(int64_t step);
    void log_write(const nlohmann::json& record) {
        if (run_log_) run_log_->write(record);
    }
    void add_energy_fields(const JobEnergy& job, nlohmann::json& record) const;
    JobEnergy job_energy(const EnergyMeasurement& mine) {
        return energy_.enabled() ? sum_energy(*comm_, mine) : JobEnergy{};
    }
    // Work that writes shared files (downloads, tokenized shards) happens on the root
    // first; the other ranks then find it done. No bound on the wait: a first download
    // can take long, and a root that dies ends the job through the launcher anyway.
    template <typename Work>
    void root_first(const char* what, const Work& work) {
        if (!root_) comm_->barrier(what, 0.0);
        work();
        if (root_) comm_->barrier(what, 0.0);
    }

    TrainConfig config_;
    const TrainOptions& options_;
    Communicator single_;
    Communicator* comm_;
    int world_, rank_;
    bool root_, quiet_;
    StopSignals stop_signals_;
    std::optional<RunLock> run_lock_;
    EnergyMonitor energy_;
    std::optional<nlohmann::json> lost_segment_;  // a killed segment's last logged energy
    double prior_joules_ = 0.0, prior_co2e_g_ = 0.0;

    DataLocations where_;
    int B_ = 0, T_ = 0, accum_ = 1;
    std::unique_ptr<DataLoader> loader_;
    std::optional<ValidationSet> val_set_;
    std::optional<ModelSource> init_source_;
    nlohmann::json config_json_;
    std::unique_ptr<GptModel> model_;
    bool sharded_ = false;
    std::vector<size_t> shards_;
    std::unique_ptr<AdamW> optimizer_;
    TrainState state_;
    bool resumed_ = false;
    std::vector<ConfigChange> resume_changes_;
    std::optional<Gpt2Tokenizer> tokenizer_;
    std::optional<RunLog> run_log_;
    std::vector<HellaSwagItem> hellaswag_items_;  // read at the first use
    MoeStepStats moe_stats_;
    LrSchedule schedule_{};
    std::vector<int> inputs_, targets_;
    std::unique_ptr<GradientSync> gradient_sync_;
    TrainSummary summary_;
    int64_t start_step_ = 0, end_step_ = 0, tokens_per_step_ = 0, session_steps_ = 0;
    double session_train_seconds_ = 0.0;
    Clock::time_point loop_start_;
};

Trainer::Trainer(const TrainConfig& config, const TrainOptions& options)
    : config_(config),
      options_(options),
      comm_(options.comm != nullptr ? options.comm : &single_),
      world_(comm_->size()),
      rank_(comm_->rank()),
      root_(comm_->is_root()),
      quiet_(options.quiet || !root_),
      energy_(options.energy) {
    config_.validate();
    check(!options_.out_dir.empty(), "train: an output folder (--out) is required");
    if (root_) claim_run_folder();
    // Energy of this segment (from here to the end of train()), added to what earlier
    // segments of the run spent (kept in the checkpoint, so it matches the log).
    energy_.begin_window("run");
    if (!quiet_) {
        for (const std::string& w : config_.warnings())
            std::fprintf(stderr, "warning: %s\n", w.c_str());
    }
    set_up_data();
    set_up_model();
    check_setting_names(options_.resume_with_changes, config_json_, "setting", "eval");
}

// One process at a time per run folder, for as long as this one runs: a second train
// into it would overwrite the checkpoints and the log. Under the lock, an earlier run is
// refused or moved aside (--no-resume), and the leftovers of a save that a killed run
// never finished go.
void Trainer::claim_run_folder() {
    const fs::path& out = options_.out_dir;
    fs::create_directories(out);
    run_lock_.emplace(out);
    RunFolderClaim claim =
        prepare_run_folder(out, options_.resume, options_.move_old_run,
                           {"checkpoints", "log.jsonl", "emissions.csv", "config.json"}, quiet_);
    summary_.moved_old_run = claim.moved_old_run;
    lost_segment_ = std::move(claim.lost_segment);
}

void Trainer::set_up_data() {
    where_ = resolve_data_locations(options_.data);
    std::string train_pattern = config_.train_data, val_pattern = config_.val_data;
    if (train_pattern.empty()) {
        root_first("preparing the dataset", [&] {
            const ShardPatterns p = prepare_named_dataset(config_.dataset, where_);
            train_pattern = p.train;
            if (val_pattern.empty()) val_pattern = p.val;
        });
    }
    B_ = config_.batch_size;
    T_ = config_.seq_len;
    accum_ = config_.grad_accum_steps(world_);
    loader_ = std::make_unique<DataLoader>(train_pattern, B_, T_, rank_, world_);
    if (config_.val_every > 0 && !val_pattern.empty()) {
        val_set_.emplace(val_pattern, T_, config_.val_tokens);
    }
    if ((config_.sample_every > 0 && root_) || config_.hellaswag_every > 0) {
        tokenizer_ = Gpt2Tokenizer::load(
            find_tokenizer_dir(where_.tokenizer_dir.empty() ? "" : where_.tokenizer_dir.string()));
    }
}

// Fine-tuning, or healing a simplified model: the model settings come from the starting
// weights (pruned expert counts included), the rest from the preset. The root reads them
// and sends them, so that other hosts need not have the files.
void Trainer::take_model_from_initial_weights() {
    std::string model_json;
    if (root_) {
        init_source_ = find_model_source(options_.init_from);
        nlohmann::json weights = read_model_config(*init_source_);
        GptConfig preset_model = config_.model;
        preset_model.finalize();
        const nlohmann::json preset = preset_model;
        for (const std::string& key : options_.model_keys_set) {
            if (model_tunable(key)) {
                weights[key] = preset.at(key);  // the command line's routing / loss knob
                continue;
            }
            usage_check(weights.value(key, nlohmann::json()) == preset.value(key, nlohmann::json()),
                        "--set model.{}={} contradicts the initial weights {}, which have "
                        "model.{} = {} (drop that --set, or train without --init-from)",
                        key, preset.value(key, nlohmann::json()).dump(), options_.init_from, key,
                        weights.value(key, nlohmann::json()).dump());
        }
        if (!quiet_) {
            std::fprintf(
                stderr,
                "greenmoe train: model settings from the initial weights %s; training, "
                "evaluation and data settings from %s\n",
                options_.init_from.c_str(),
                options_.preset.empty() ? "the built-in defaults" : options_.preset.c_str());
            const auto replaced = config_changes({{"model", preset}}, {{"model", weights}});
            if (!replaced.empty()) {
                std::fprintf(stderr,
                             "greenmoe train: the initial weights replace the preset's %s\n",
                             describe_changes(replaced).c_str());
            }
        }
        model_json = weights.dump();
    }
    comm_->broadcast(model_json, "the starting model's config");
    config_.model = GptConfig{};
    from_json(nlohmann::json::parse(model_json), config_.model);
}

void Trainer::set_up_model() {
    if (!options_.init_from.empty()) take_model_from_initial_weights();
    config_.model.finalize();
    config_json_ = train_config_to_json(config_);
    if (options_.check_memory) {
        check_fits_in_memory(estimate_training_bytes(config_.model, B_, T_),
                             fmt::format("training this model ({} layers, width {}) on batches "
                                         "of {} × {} tokens",
                                         config_.model.n_layer, config_.model.n_embd, B_, T_),
                             "lower the model or batch size, or pass --no-memory-check to try "
                             "anyway");
    }
    model_ = std::make_unique<GptModel>(config_.model, B_, T_);
    const size_t n_floats = model_->layout().total_floats();
    // ZeRO stage 1: each rank keeps the moments of its own shard of the parameters.
    sharded_ = options_.shard_optimizer && world_ > 1;
    shards_ = optimizer_shards(n_floats, sharded_ ? world_ : 1);
    optimizer_ = sharded_
                     ? std::make_unique<AdamW>(model_->layout(), config_.adamw,
                                               shards_[size_t(rank_)], shards_[size_t(rank_) + 1])
                     : std::make_unique<AdamW>(model_->layout(), config_.adamw);
    state_.config = config_json_;
    inputs_.resize(static_cast<size_t>(B_) * T_);
    targets_.resize(inputs_.size());
    schedule_ =
        LrSchedule{config_.lr, config_.min_lr_ratio, config_.warmup_steps, config_.max_steps};
    tokens_per_step_ = static_cast<int64_t>(B_) * T_ * accum_ * world_;
    gradient_sync_ =
        std::make_unique<GradientSync>(*comm_, *model_, options_.overlap_communication);
}

// The root resumes or initializes; every rank then starts from its weights, bias,
// moments and position.
void Trainer::resume_or_initialize() {
    int64_t resumed = 0;  // an int64 so that it can be broadcast
    int64_t adam_step = 0;
    std::optional<AdamW> full_moments;  // the root's whole moments, under ZeRO
    if (root_) {
        std::optional<fs::path> from;
        if (options_.resume) from = latest_checkpoint(options_.out_dir);
        if (from) {
            resume_changes_ = check_resume_settings(
                read_train_state(*from).config, config_json_, *from, options_.resume_with_changes,
                fixed_on_resume, "the model or the data each step sees");
            if (sharded_) full_moments.emplace(model_->layout(), config_.adamw);
            state_ = load_checkpoint(*from, *model_, sharded_ ? &*full_moments : optimizer_.get());
            state_.config = config_json_;
            adam_step = sharded_ ? full_moments->step_count() : optimizer_->step_count();
            resumed = 1;
        } else if (init_source_) {
            load_model_weights(*init_source_, *model_);
        } else {
            model_->init_weights(config_.seed);
        }
    }
    if (world_ > 1) broadcast_start(resumed, adam_step, full_moments);
    resumed_ = resumed != 0;
    if (resumed_) loader_->set_position(state_.data);
    // config.json says what the run is: written when it starts, and again only when the
    // user allowed changes on resume.
    const fs::path config_file = options_.out_dir / "config.json";
    if (root_ && (!resumed_ || !resume_changes_.empty() || !fs::exists(config_file))) {
        write_file_atomic(config_file, config_json_.dump(2) + "\n");
    }
    if (root_ && !resumed_ && init_source_) {
        const nlohmann::json parent = describe_parent(options_.init_from, *init_source_);
        write_file_atomic(options_.out_dir / "parent.json", parent.dump(2) + "\n");
    }
    if (state_.extra.contains("energy")) {
        prior_joules_ = state_.extra["energy"].value("joules", 0.0);
        prior_co2e_g_ = state_.extra["energy"].value("co2e_g", 0.0);
    }
    start_step_ = state_.step;
    end_step_ = options_.stop_at_step > 0 ? std::min(options_.stop_at_step, config_.max_steps)
                                          : config_.max_steps;
}

void Trainer::broadcast_start(int64_t& resumed, int64_t adam_step,
                              std::optional<AdamW>& full_moments) {
    const size_t n_floats = model_->layout().total_floats();
    Communicator& comm = *comm_;
    comm.broadcast(std::as_writable_bytes(std::span<int64_t>(&resumed, 1)), "the resume flag");
    broadcast_train_state(comm, state_, adam_step);
    comm.broadcast(std::as_writable_bytes(std::span<float>(model_->params(), n_floats)),
                   "the parameters");
    comm.broadcast(
        std::as_writable_bytes(std::span<float>(model_->moe_bias(), model_->moe_bias_size())),
        "the routing bias");
    if (resumed && sharded_) {
        comm.scatter_pieces(root_ ? full_moments->m() : nullptr, optimizer_->m(), shards_,
                            "the optimizer moments");
        comm.scatter_pieces(root_ ? full_moments->v() : nullptr, optimizer_->v(), shards_,
                            "the optimizer moments");
    } else if (resumed) {
        comm.broadcast(std::as_writable_bytes(std::span<float>(optimizer_->m(), n_floats)),
                       "the optimizer moments");
        comm.broadcast(std::as_writable_bytes(std::span<float>(optimizer_->v(), n_floats)),
                       "the optimizer moments");
    }
    optimizer_->set_step_count(adam_step);
    full_moments.reset();
}

// A segment killed before its emissions row (SIGKILL, a crash) still cost energy: its
// last logged measurement becomes the row, and counts in this run's totals.
void Trainer::record_lost_segment() {
    if (!lost_segment_ || !energy_.enabled()) return;
    const LostSegment lost =
        greenmoe::record_lost_segment(*lost_segment_, options_.out_dir, energy_);
    log_write(lost.log_record);
    prior_joules_ += lost.energy.total_joules_with_pue;
    prior_co2e_g_ += lost.energy.co2e_g;
}

void Trainer::start_log() {
    if (root_) {
        run_log_.emplace(options_.out_dir / "log.jsonl", resumed_ ? state_.step : 0);
        if (!run_log_->warning().empty() && !quiet_)
            std::fprintf(stderr, "warning: %s\n", run_log_->warning().c_str());
        record_lost_segment();
    }
    // log_version 2: train records carry the step just done (1…N); val, eval and sample
    // records the steps done when measured (0: before training). Version 1 (no field)
    // numbered train records from 0.
    nlohmann::json start = {{"type", "start"},
                            {"log_version", 2},
                            {"resumed_from_step", start_step_},
                            {"parameters", model_->num_parameters()},
                            {"tokens_per_step", tokens_per_step_},
                            {"grad_accum_steps", accum_},
                            {"config", config_json_}};
    if (!resume_changes_.empty()) {
        nlohmann::json changes = nlohmann::json::object();
        for (const ConfigChange& c : resume_changes_) changes[c.key] = {c.before, c.after};
        start["resumed_with_changes"] = changes;
    }
    if (init_source_ && !resumed_) start["init_from"] = options_.init_from;
    if (world_ > 1) {
        start["ranks"] = world_;
        start["shard_optimizer"] = sharded_;
        start["overlap_gradient_sums"] = options_.overlap_communication;
    }
    log_write(start);
    say_what_runs();
    loop_start_ = Clock::now();
}

void Trainer::say_what_runs() const {
    if (quiet_) return;
    if (options_.preset.empty() && options_.init_from.empty()) {
        const GptConfig& m = config_.model;
        std::fprintf(
            stderr,
            "greenmoe train: no --config: the built-in defaults (%d layers, %d heads, "
            "width %d, %s MLP, batch %d × %d, data %s); presets are in configs/\n",
            m.n_layer, m.n_head, m.n_embd, m.mlp.c_str(), B_, T_,
            config_.train_data.empty() ? config_.dataset.c_str() : config_.train_data.c_str());
    }
    if (!resume_changes_.empty()) {
        std::fprintf(stderr, "greenmoe train: resuming with changed settings: %s\n",
                     describe_changes(resume_changes_).c_str());
    }
    std::string ranks = world_ > 1 ? fmt::format(" × {} ranks", world_) : std::string();
    std::string resuming =
        start_step_ > 0 ? fmt::format(" (resuming at step {})", start_step_) : std::string();
    std::fprintf(stderr,
                 "greenmoe train: %s parameters, %d×%d tokens × %d micro-steps%s = %lld tokens "
                 "per step, %lld steps%s\n",
                 format_count(static_cast<double>(model_->num_parameters())).c_str(), B_, T_,
                 accum_, ranks.c_str(), static_cast<long long>(tokens_per_step_),
                 static_cast<long long>(config_.max_steps), resuming.c_str());
    const GptConfig& m = config_.model;
    if (m.mlp == "condmlp" && m.w_load == 0 && m.w_importance == 0 && m.lambda_z == 0 &&
        m.w_penalty == 0) {
        std::fprintf(stderr,
                     "warning: condmlp with every auxiliary weight at 0: its guesser only learns "
                     "through the auxiliary losses, so it will never learn (set model.w_load, "
                     "w_importance, lambda_z or w_penalty)\n");
    }
}

// ---- Periodic jobs -----------------------------------------------------------------

// Validation, HellaSwag and a sample before update `steps_done` + 1: they are logged at
// step `steps_done` (0: the untrained model), the count of updates the model has had. Those
// after the last update come from finish().
void Trainer::run_due_evaluations(int64_t steps_done) {
    if (val_set_ && steps_done % config_.val_every == 0) validate(steps_done);
    if (config_.hellaswag_every > 0 && steps_done > 0 &&
        steps_done % config_.hellaswag_every == 0) {
        hellaswag(steps_done);
    }
    if (root_ && config_.sample_every > 0 && steps_done > 0 &&
        steps_done % config_.sample_every == 0) {
        sample(steps_done);
    }
}

// Each rank scores its share of the validation sequences; the sums are added up.
void Trainer::validate(int64_t step) {
    const auto t0 = Clock::now();
    model_->set_training(false);
    const std::vector<size_t> part = comm_->split(val_set_->num_sequences());
    double sum =
        validation_loss_sum(*model_, *val_set_, part[size_t(rank_)], part[size_t(rank_) + 1]);
    comm_->all_reduce_sum(std::span<double>(&sum, 1), "the validation loss");
    const double val_loss = sum / static_cast<double>(val_set_->num_tokens());
    model_->set_training(true);
    summary_.final_val_loss = val_loss;
    log_write({{"type", "val"},
               {"step", step},
               {"val_loss", val_loss},
               {"val_tokens", val_set_->num_tokens()},
               {"seconds", seconds_since(t0)}});
    if (!quiet_) {
        std::fprintf(stderr, "step %5lld | val loss %.4f\n", static_cast<long long>(step),
                     val_loss);
    }
}

// Each rank scores its share of the items; the counts are added up.
void Trainer::hellaswag(int64_t step) {
    if (hellaswag_items_.empty()) {
        fs::path file;
        root_first("fetching HellaSwag",
                   [&] { file = find_or_fetch_hellaswag(config_.hellaswag_data, where_); });
        hellaswag_items_ = read_hellaswag(file, static_cast<size_t>(config_.hellaswag_limit));
        check(!hellaswag_items_.empty(), "{}: no HellaSwag items", file.string());
    }
    HellaSwagOptions ho;
    ho.progress = !quiet_;
    const std::vector<size_t> part = comm_->split(hellaswag_items_.size());
    const std::vector<HellaSwagItem> mine(
        hellaswag_items_.begin() + static_cast<std::ptrdiff_t>(part[size_t(rank_)]),
        hellaswag_items_.begin() + static_cast<std::ptrdiff_t>(part[size_t(rank_) + 1]));
    // A rank left without items (fewer items than ranks) adds zeros.
    HellaSwagResult r =
        mine.empty() ? HellaSwagResult{} : evaluate_hellaswag(*model_, *tokenizer_, mine, ho);
    std::array<int64_t, 6> counts = {
        r.items, r.correct, r.correct_norm, r.harness_correct, r.harness_correct_norm, r.truncated};
    comm_->all_reduce_sum(std::span<int64_t>(counts), "the HellaSwag scores");
    r.items = counts[0];
    r.correct = counts[1];
    r.correct_norm = counts[2];
    r.harness_correct = counts[3];
    r.harness_correct_norm = counts[4];
    r.truncated = counts[5];
    summary_.final_hellaswag_acc_norm = r.acc_norm();
    log_write({{"type", "eval"},
               {"step", step},
               {"task", "hellaswag"},
               {"items", r.items},
               {"acc", r.acc()},
               {"acc_norm", r.acc_norm()},
               {"harness_acc", r.harness_acc()},
               {"harness_acc_norm", r.harness_acc_norm()},
               {"seconds", r.seconds}});
    if (!quiet_) {
        std::fprintf(stderr,
                     "step %5lld | hellaswag %lld items: acc %.4f acc_norm %.4f (harness "
                     "%.4f / %.4f)\n",
                     static_cast<long long>(step), static_cast<long long>(r.items), r.acc(),
                     r.acc_norm(), r.harness_acc(), r.harness_acc_norm());
    }
}

void Trainer::sample(int64_t step) {
    SampleOptions so;
    so.max_new_tokens = config_.sample_tokens;
    so.temperature = config_.temperature;
    so.top_k = config_.top_k;
    so.seed = rng_key(config_.seed, static_cast<uint64_t>(step));
    const std::vector<int> prompt = config_.sample_prompt.empty()
                                        ? std::vector<int>{tokenizer_->eot_token()}
                                        : tokenizer_->encode(config_.sample_prompt);
    model_->set_training(false);
    const std::vector<int> out = generate(*model_, prompt, so);
    model_->set_training(true);
    const std::string text = config_.sample_prompt + tokenizer_->decode(out);
    log_write({{"type", "sample"}, {"step", step}, {"text", text}});
    if (!quiet_)
        std::fprintf(stderr, "step %lld | sample: %s\n", static_cast<long long>(step),
                     text.c_str());
}

// ---- One step ----------------------------------------------------------------------

// One optimizer step over `accum` micro-batches on each of the `world` ranks. Rank r's
// micro-step m is the job's micro-batch m·world + r: its window of the data and its
// routing noise are those one process would use for it, whatever the rank count.
StepResult Trainer::train_step(int64_t step) {
    const auto t0 = Clock::now();
    GptModel& model = *model_;
    comm_->take_wait_seconds();
    model.zero_grad();
    double sums[2] = {0.0, 0.0};  // loss, auxiliary loss
    moe_stats_.reset(model);
    const float scale = 1.0f / static_cast<float>(accum_ * world_);
    for (int micro = 0; micro < accum_; ++micro) {
        loader_->next_batch(inputs_.data(), targets_.data());
        const auto job_micro = static_cast<uint64_t>(micro) * uint64_t(world_) + uint64_t(rank_);
        model.set_rng_key(
            rng_key(config_.seed, kMoeStream, static_cast<uint64_t>(step), job_micro));
        sums[0] += model.forward(inputs_.data(), targets_.data(), B_, T_);
        sums[1] += model.aux_loss();
        moe_stats_.add(model);
        // The gradient is complete after the last micro-step: its sums start there.
        model.backward(
            scale, micro == accum_ - 1 ? gradient_sync_->block_done() : std::function<void(int)>());
    }
    gradient_sync_->finish();
    comm_->all_reduce_sum(std::span<double>(sums, 2), "the loss");
    all_reduce_moe_stats(*comm_, model, moe_stats_);
    StepResult r;
    r.loss = sums[0] / (accum_ * world_);
    r.aux = sums[1] / (accum_ * world_);
    check(std::isfinite(r.loss), "training diverged: loss is {} at step {}", r.loss, step);

    // The update: clip, AdamW, and the loss-free balancing bias.
    r.grad_norm = grad_norm(model.grads(), model.layout());
    if (config_.grad_clip > 0) {
        clip_grads(model.grads(), model.layout(), r.grad_norm, config_.grad_clip);
    }
    r.lr = schedule_.at(step);
    optimizer_->step(model.params(), model.grads(), r.lr);
    if (sharded_) comm_->all_gather_pieces(model.params(), shards_, "the updated parameters");
    r.comm_seconds = comm_->take_wait_seconds();
    // DeepSeek's loss-free balancing: this step's counts move the bias, until 97 % of
    // the planned steps; the counts are cleared either way.
    const bool bias_on = config_.model.bias_gamma > 0 &&
                         static_cast<double>(step) < kBiasStopFraction * config_.max_steps;
    model.update_moe_bias(bias_on ? config_.model.bias_gamma : 0.0f);
    r.seconds = seconds_since(t0);

    state_.step = step + 1;
    state_.tokens_seen += tokens_per_step_;
    state_.train_seconds += r.seconds;
    session_train_seconds_ += r.seconds;
    session_steps_ += 1;
    summary_.final_train_loss = r.loss;
    return r;
}

// `step` counts from 0 in the loop; the log and the console number steps 1…N.
bool Trainer::log_due(int64_t step) const {
    const int64_t n = step + 1;
    return n == 1 || n % config_.log_every == 0 || n == config_.max_steps || n == end_step_;
}

// The job's energy so far, every rank's summed (so a collective: all ranks call it).
void Trainer::add_energy_fields(const JobEnergy& job, nlohmann::json& record) const {
    if (!energy_.enabled()) return;
    const double joules = prior_joules_ + job.joules_with_pue;
    record["energy_j"] = joules;
    record["co2e_g"] = prior_co2e_g_ + job.co2e_g;
    record["j_per_token"] =
        state_.tokens_seen > 0 ? joules / static_cast<double>(state_.tokens_seen) : 0.0;
    record["energy_source"] = job.total.source_label;
    // energy_j, co2e_g and j_per_token include it (what the facility used).
    record["pue"] = job.total.total_joules > 0
                        ? job.total.total_joules_with_pue / job.total.total_joules
                        : job.total.pue;
    if (world_ > 1) record["energy_j_per_rank"] = job.joules_per_rank;
    // This segment's own measurement: what the next run records if this one is killed.
    record["segment"] = segment_json(job.total);
}

void Trainer::log_step(int64_t step, const StepResult& r) {
    const double tok_per_s = static_cast<double>(tokens_per_step_) / r.seconds;
    nlohmann::json record = {{"type", "train"},
                             {"step", step + 1},
                             {"loss", r.loss},
                             {"lr", r.lr},
                             {"grad_norm", r.grad_norm},
                             {"tokens", state_.tokens_seen},
                             {"tokens_per_s", tok_per_s},
                             {"step_ms", r.seconds * 1e3},
                             {"train_seconds", state_.train_seconds}};
    if (world_ > 1) record["comm_wait_ms"] = r.comm_seconds * 1e3;
    if (model_->num_moe_layers() > 0) {
        record["aux_loss"] = r.aux;
        record["moe"] = moe_stats_.to_json(*model_);
    }
    const JobEnergy job = job_energy(energy_.peek("run"));
    add_energy_fields(job, record);
    log_write(record);
    if (quiet_) return;
    // Wall time per step so far, validation and samples included.
    const double avg = seconds_since(loop_start_) / static_cast<double>(session_steps_);
    const std::string moe = model_->num_moe_layers() > 0 ? moe_stats_.summary(r.aux) : "";
    std::string energy;
    if (energy_.enabled()) {
        energy = " | ";
        energy += energy_.progress_text(job.total);
    }
    std::fprintf(
        stderr,
        "step %5lld/%lld | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s | %.0f ms | "
        "ETA %s%s%s\n",
        static_cast<long long>(step + 1), static_cast<long long>(config_.max_steps), r.loss, r.lr,
        r.grad_norm, tok_per_s, r.seconds * 1e3,
        ProgressBar::format_duration(avg * static_cast<double>(config_.max_steps - step - 1))
            .c_str(),
        moe.c_str(), energy.c_str());
}

bool Trainer::checkpoint_due() const {
    return (config_.checkpoint_every > 0 && state_.step % config_.checkpoint_every == 0) ||
           state_.step == end_step_;
}

// Every rank takes part (the energy sum, the moments of ZeRO shards); the root writes.
void Trainer::save_checkpoint() {
    state_.data = loader_->position();
    if (energy_.enabled()) {
        const JobEnergy job = job_energy(energy_.peek("run"));
        state_.extra["energy"] = {{"joules", prior_joules_ + job.joules_with_pue},
                                  {"co2e_g", prior_co2e_g_ + job.co2e_g}};
    }
    if (sharded_) {
        std::optional<AdamW> whole;
        if (root_) whole.emplace(model_->layout(), config_.adamw);
        comm_->gather_pieces(optimizer_->m(), root_ ? whole->m() : nullptr, shards_,
                             "the optimizer moments");
        comm_->gather_pieces(optimizer_->v(), root_ ? whole->v() : nullptr, shards_,
                             "the optimizer moments");
        if (root_) {
            whole->set_step_count(optimizer_->step_count());
            summary_.last_checkpoint = greenmoe::save_checkpoint(options_.out_dir, *model_, *whole,
                                                                 state_, config_.keep_checkpoints);
        }
    } else if (root_) {
        summary_.last_checkpoint = greenmoe::save_checkpoint(options_.out_dir, *model_, *optimizer_,
                                                             state_, config_.keep_checkpoints);
    }
}

// SIGINT or SIGTERM received by any rank (0: none): every rank stops after the same step.
int Trainer::stop_requested() {
    const int mine = stop_signals_.signal();
    if (world_ == 1) return mine;
    std::array<int64_t, 2> got = {mine == SIGINT ? 1 : 0, mine == SIGTERM ? 1 : 0};
    comm_->all_reduce_sum(std::span<int64_t>(got), "the stop request");
    return got[0] > 0 ? SIGINT : got[1] > 0 ? SIGTERM : 0;
}

// ---- The end -----------------------------------------------------------------------

// The segment's emissions row, then (when the run is complete) the final evaluations and
// the "done" record, and the console summary.
TrainSummary Trainer::finish(int stop_signal) {
    summary_.stop_signal = stop_signal;
    const JobEnergy segment = job_energy(energy_.end_window("run"));
    if (energy_.enabled()) {
        if (root_) {
            EmissionsCsv(options_.out_dir / "emissions.csv")
                .append(energy_.emissions_row(segment.total));
        }
        summary_.energy_joules = prior_joules_ + segment.joules_with_pue;
        summary_.co2e_g = prior_co2e_g_ + segment.co2e_g;
    }
    nlohmann::json end = {{"type", "end"}, {"last_step", state_.step}};
    if (stop_signal != 0) end["stopped_by"] = signal_name(stop_signal);
    log_write(end);
    summary_.steps_done = state_.step;
    summary_.tokens_per_second =
        session_train_seconds_ > 0
            ? static_cast<double>(session_steps_ * tokens_per_step_) / session_train_seconds_
            : 0.0;
    // Also when resumed at the last step: a run killed during its final evaluations (or
    // started again once complete) gets them and its "done" record, which opening the log
    // at that step dropped.
    if (stop_signal == 0 && state_.step >= config_.max_steps) {
        if (val_set_) validate(state_.step);
        if (config_.hellaswag_every > 0) hellaswag(state_.step);
        if (root_ && config_.sample_every > 0) sample(state_.step);
        if (session_steps_ == 0 && root_) {
            summary_.final_train_loss = last_logged_train_loss(options_.out_dir / "log.jsonl");
        }
        nlohmann::json done = {{"type", "done"},
                               {"step", state_.step},
                               {"train_loss", summary_.final_train_loss},
                               {"tokens", state_.tokens_seen},
                               {"train_seconds", state_.train_seconds}};
        if (summary_.final_val_loss >= 0) done["val_loss"] = summary_.final_val_loss;
        if (summary_.final_hellaswag_acc_norm >= 0) {
            done["hellaswag_acc_norm"] = summary_.final_hellaswag_acc_norm;
        }
        add_energy_fields(segment, done);
        done.erase("segment");
        log_write(done);
    }
    if (stop_signal != 0 && root_) {
        std::fprintf(stderr,
                     "greenmoe train: stopped by %s after step %lld, saved in %s; run the same "
                     "command again to resume\n",
                     signal_name(stop_signal), static_cast<long long>(state_.step),
                     summary_.last_checkpoint.c_str());
    }
    if (quiet_) return summary_;
    const std::string val = summary_.final_val_loss >= 0
                                ? fmt::format(", val loss {:.4f}", summary_.final_val_loss)
                                : std::string();
    std::fprintf(stderr, "done: %lld steps, %s tokens, train loss %.4f%s, %.0f tok/s\n",
                 static_cast<long long>(state_.step),
                 format_count(static_cast<double>(state_.tokens_seen)).c_str(),
                 summary_.final_train_loss, val.c_str(), summary_.tokens_per_second);
    if (energy_.enabled()) {
        std::fprintf(stderr, "%s\n", energy_.summary_line(segment.total).c_str());
    }
    return summary_;
}

}  // namespace

TrainSummary train(const TrainConfig& config, const TrainOptions& options) {
    Trainer trainer(config, options);  // run folder, data, model, optimizer
    trainer.resume_or_initialize();
    trainer.start_log();
    int stop = 0;
    for (int64_t step = trainer.start_step(); step < trainer.end_step(); ++step) {
        trainer.run_due_evaluations(step);              // validation, HellaSwag, a sample
        const StepResult r = trainer.train_step(step);  // micro-batches, then the update
        stop = trainer.stop_requested();
        if (trainer.log_due(step) || stop) trainer.log_step(step, r);
        if (trainer.checkpoint_due() || stop) trainer.save_checkpoint();
        if (stop) break;  // SIGINT / SIGTERM: the step is saved, the process can end
    }
    return trainer.finish(stop);
}

}  // namespace greenmoe

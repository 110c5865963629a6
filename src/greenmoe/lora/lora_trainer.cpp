// The LoRA training loop (see lora_trainer.h): train_lora() reads like the full trainer's
// loop, and each part of it (setting up, resuming, a step, a checkpoint, the end) is a named
// LoraTrainer method.
#include "greenmoe/lora/lora_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/core/json_util.h"
#include "greenmoe/core/progress.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/energy/emissions_csv.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/hf/lora_adapter.h"
#include "greenmoe/hf/lora_merge.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/checkpoint_paths.h"
#include "greenmoe/io/run_lock.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/io/stop_signal.h"
#include "greenmoe/lora/lora_model.h"
#include "greenmoe/lora/lora_params.h"
#include "greenmoe/text/hf_tokenizer.h"
#include "greenmoe/train/checkpoint.h"
#include "greenmoe/train/lr_schedule.h"
#include "greenmoe/train/resume_settings.h"
#include "greenmoe/train/run_folder.h"
#include "greenmoe/train/run_log.h"
#include "greenmoe/train/train_config.h"

namespace greenmoe::lora {

namespace fs = std::filesystem;

// ---- Settings ----------------------------------------------------------------------

int LoraTrainConfig::grad_accum_steps() const {
    const int64_t micro = static_cast<int64_t>(batch_size) * seq_len;
    const int64_t total = total_batch_tokens > 0 ? total_batch_tokens : micro;
    check(total % micro == 0,
          "train.total_batch_tokens ({}) must be a multiple of batch_size × seq_len ({} × {} = "
          "{})",
          total, batch_size, seq_len, micro);
    return static_cast<int>(total / micro);
}

int64_t LoraTrainConfig::warmup() const {
    if (warmup_steps >= 0) return warmup_steps;
    // transformers' get_warmup_steps: ceil(max_steps · warmup_ratio).
    return static_cast<int64_t>(std::ceil(static_cast<double>(max_steps) * warmup_ratio));
}

void LoraTrainConfig::validate() const {
    check(batch_size >= 1, "train.batch_size must be ≥ 1, got {}", batch_size);
    check(seq_len >= 2, "train.seq_len must be ≥ 2 (a token and the next one), got {}", seq_len);
    check(total_batch_tokens >= 0, "train.total_batch_tokens must be ≥ 0, got {}",
          total_batch_tokens);
    check(max_steps >= 1, "train.max_steps must be ≥ 1, got {}", max_steps);
    check(lr > 0, "train.lr must be > 0, got {}", lr);
    check(min_lr_ratio >= 0 && min_lr_ratio <= 1, "train.min_lr_ratio must be in [0, 1], got {}",
          min_lr_ratio);
    check(warmup_steps >= -1,
          "train.warmup_steps must be ≥ 0 (or -1: train.warmup_ratio of the steps), got {}",
          warmup_steps);
    check(warmup_ratio >= 0 && warmup_ratio <= 1, "train.warmup_ratio must be in [0, 1], got {}",
          warmup_ratio);
    check(adamw.beta1 >= 0 && adamw.beta1 < 1 && adamw.beta2 >= 0 && adamw.beta2 < 1,
          "train.beta1 and train.beta2 must be in [0, 1)");
    check(adamw.eps > 0, "train.eps must be > 0, got {}", adamw.eps);
    check(adamw.weight_decay >= 0, "train.weight_decay must be ≥ 0, got {}", adamw.weight_decay);
    check(grad_clip >= 0, "train.grad_clip must be ≥ 0 (0 = no clipping), got {}", grad_clip);
    check(log_every >= 1, "train.log_every must be ≥ 1, got {}", log_every);
    check(checkpoint_every >= 0, "checkpoint.every must be ≥ 0, got {}", checkpoint_every);
    check(keep_checkpoints >= 1, "checkpoint.keep must be ≥ 1, got {}", keep_checkpoints);
    (void)grad_accum_steps();
}

std::vector<std::string> LoraTrainConfig::warnings() const {
    std::vector<std::string> out;
    if (warmup() > max_steps) {
        out.push_back(fmt::format(
            "train.warmup_steps ({}) > train.max_steps ({}): the learning rate never reaches "
            "train.lr",
            warmup(), max_steps));
    }
    return out;
}

nlohmann::json lora_train_config_to_json(const LoraTrainConfig& c) {
    nlohmann::json j;
    j["train"] = {{"batch_size", c.batch_size},
                  {"seq_len", c.seq_len},
                  {"total_batch_tokens", c.total_batch_tokens},
                  {"max_steps", c.max_steps},
                  {"lr", c.lr},
                  {"min_lr_ratio", c.min_lr_ratio},
                  {"warmup_steps", c.warmup_steps},
                  {"warmup_ratio", c.warmup_ratio},
                  {"beta1", c.adamw.beta1},
                  {"beta2", c.adamw.beta2},
                  {"eps", c.adamw.eps},
                  {"weight_decay", c.adamw.weight_decay},
                  {"grad_clip", c.grad_clip},
                  {"seed", c.seed},
                  {"log_every", c.log_every}};
    j["checkpoint"] = {{"every", c.checkpoint_every}, {"keep", c.keep_checkpoints}};
    return j;
}

namespace {

// Why a section of the full trainer's config has no place in a LoRA run.
const char* not_for_lora(const std::string& section) {
    if (section == "model") {
        return "the model is the Hugging Face base given by --init-from, and the adapters are "
               "set by --lora";
    }
    if (section == "data") {
        return "the instruction data come from --data (with --template, --loss-on, "
               "--text-field, --no-pack)";
    }
    if (section == "eval") {
        return "LoRA runs do not evaluate while training; evaluate OUT/adapter with `greenmoe "
               "eval --adapter`";
    }
    return nullptr;
}

}  // namespace

LoraTrainConfig lora_train_config_from_json(const nlohmann::json& j) {
    LoraTrainConfig c;
    JsonReader top(j, "config");
    for (const auto& [section, value] : j.items()) {
        if (const char* why = not_for_lora(section)) {
            fail("config section '{}' is not for LoRA runs: {}", section, why);
        }
    }
    top.mark("train");
    top.mark("checkpoint");
    top.mark("comment");
    top.finish();
    if (j.contains("train")) {
        JsonReader r(j.at("train"), "train");
        r.get("batch_size", c.batch_size);
        r.get("seq_len", c.seq_len);
        r.get("total_batch_tokens", c.total_batch_tokens);
        r.get("max_steps", c.max_steps);
        r.get("lr", c.lr);
        r.get("min_lr_ratio", c.min_lr_ratio);
        r.get("warmup_steps", c.warmup_steps);
        r.get("warmup_ratio", c.warmup_ratio);
        r.get("beta1", c.adamw.beta1);
        r.get("beta2", c.adamw.beta2);
        r.get("eps", c.adamw.eps);
        r.get("weight_decay", c.adamw.weight_decay);
        r.get("grad_clip", c.grad_clip);
        r.get("seed", c.seed);
        r.get("log_every", c.log_every);
        r.finish();
    }
    if (j.contains("checkpoint")) {
        JsonReader r(j.at("checkpoint"), "checkpoint");
        r.get("every", c.checkpoint_every);
        r.get("keep", c.keep_checkpoints);
        r.finish();
    }
    c.validate();
    return c;
}

LoraTrainConfig load_lora_train_config(const std::string& preset,
                                       const std::vector<std::string>& sets) {
    for (const std::string& s : sets) {
        const std::string section = s.substr(0, s.find('.'));
        if (const char* why = not_for_lora(section)) {
            usage_fail("--set {}: LoRA runs have no {}.* settings: {}", s, section, why);
        }
    }
    const nlohmann::json j = load_config_json(preset, sets);
    try {
        return lora_train_config_from_json(j);
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {
        // A message naming a key the command line set ("train.seq_len must be ≥ 2") is a
        // command-line error, as load_train_config reports it.
        const std::string message = e.what();
        for (const std::string& s : sets) {
            const std::string key = s.substr(0, s.find('='));
            const size_t at = message.find(key);
            const size_t after = at + key.size();
            const bool whole_key =
                at != std::string::npos && (after == message.size() || message[after] == ':' ||
                                            message[after] == ' ' || message[after] == ')');
            if (whole_key) throw UsageError("--set " + s + ": " + message);
        }
        throw;
    }
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kStateVersion = 1;
constexpr const char* kRunKind = "lora";
constexpr uint64_t kShuffleStream = 0x73687566;  // "shuf"
constexpr uint64_t kDropoutStream = 0x64726f70;  // "drop"

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string format_count(double n) {
    if (n >= 1e9) return fmt::format("{:.2f}G", n / 1e9);
    if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
    if (n >= 1e3) return fmt::format("{:.1f}k", n / 1e3);
    return fmt::format("{:.0f}", n);
}

nlohmann::json read_json_file(const fs::path& file) {
    const auto j = nlohmann::json::parse(read_file(file), nullptr, false);
    check(!j.is_discarded() && j.is_object(), "{}: not a JSON object (truncated or corrupt?)",
          file.string());
    return j;
}

// ---- Resuming ----------------------------------------------------------------------

// Settings that fix what is trained and which tokens each step sees.
bool fixed_on_resume(const std::string& key) {
    // Dropout does not change what the adapters are; the data files may move (the tokens
    // themselves are checked against the checkpoint's fingerprint).
    if (key == "lora.dropout" || key == "data.files") return false;
    return key.starts_with("base") || key.starts_with("lora") || key.starts_with("data") ||
           key == "train.batch_size" || key == "train.seq_len" ||
           key == "train.total_batch_tokens" || key == "train.seed";
}

// ---- The base and the adapters -----------------------------------------------------

// The LoRA settings of an existing PEFT adapter (to train it further and write it back).
LoraSpec adapter_spec(const fs::path& dir) {
    const fs::path file = dir / "adapter_config.json";
    const nlohmann::json c = read_json_file(file);
    LoraSpec spec;
    try {
        spec.rank = c.at("r").get<int64_t>();
        spec.alpha = c.value("lora_alpha", static_cast<double>(spec.rank));
        if (c.contains("lora_dropout") && !c["lora_dropout"].is_null())
            spec.dropout = c["lora_dropout"].get<double>();
        if (c.contains("use_rslora") && !c["use_rslora"].is_null())
            spec.rslora = c["use_rslora"].get<bool>();
        const nlohmann::json& targets = c.at("target_modules");
        if (targets.is_string()) {
            check(targets.get<std::string>() == "all-linear",
                  "{}: target_modules is a regular expression ({}); greenmoe continues adapters "
                  "whose target_modules is a list of names or \"all-linear\"",
                  file.string(), targets.dump());
            spec.targets = {"all-linear"};
        } else {
            spec.targets = targets.get<std::vector<std::string>>();
        }
    } catch (const nlohmann::json::exception& e) {
        fail("{}: missing or malformed field ({})", file.string(), e.what());
    }
    for (const char* key : {"rank_pattern", "alpha_pattern"}) {
        const auto it = c.find(key);
        check(it == c.end() || it->is_null() || (it->is_object() && it->empty()),
              "{}: {} is set; greenmoe continues adapters of one rank and alpha only",
              file.string(), key);
    }
    check(spec.rank >= 1 && spec.alpha > 0 && spec.dropout >= 0 && spec.dropout < 1,
          "{}: r must be ≥ 1, lora_alpha > 0 and lora_dropout in [0, 1)", file.string());
    return spec;
}

// pad_token_id of the base's config.json when it is a token of the model, else `fallback`.
int32_t pad_token_of(const fs::path& base_dir, int vocab_size, int32_t fallback) {
    const auto j = nlohmann::json::parse(read_file(base_dir / "config.json"), nullptr, false);
    if (!j.is_object()) return fallback;
    const auto it = j.find("pad_token_id");
    if (it == j.end() || !it->is_number_integer()) return fallback;
    const auto id = it->get<int64_t>();
    return id >= 0 && id < vocab_size ? static_cast<int32_t>(id) : fallback;
}

// A digest of the training sequences: a resume over other tokens (a data file edited in
// between, another tokenizer) is refused instead of silently mixing two data sets.
uint64_t fingerprint(const TrainingSequences& s) {
    uint64_t h = rng_key(static_cast<uint64_t>(s.rows), static_cast<uint64_t>(s.seq_len));
    for (size_t i = 0; i < s.ids.size(); ++i) {
        const uint64_t pair = (static_cast<uint64_t>(static_cast<uint32_t>(s.ids[i])) << 32) |
                              static_cast<uint32_t>(s.labels[i]);
        h = mix64(h ^ (pair + 0x9e3779b97f4a7c15ULL));
    }
    return h;
}

// What the run started from, for `greenmoe report`: the base folder, and when it is a
// `simplify` output, the model it pruned and that run's CO2e.
nlohmann::json describe_parent(const std::string& base, const hf::HfModel& model,
                               const std::string& adapter) {
    const fs::path path = fs::absolute(base).lexically_normal();
    nlohmann::json j = {{"path", path.string()},
                        {"weights", path.string()},
                        {"format", "huggingface"},
                        {"model_type", model.config().model_type},
                        {"parameters", model.parameter_count()}};
    if (!adapter.empty()) j["adapter"] = fs::absolute(adapter).lexically_normal().string();
    fs::path dir = path;
    const fs::path summary_file = path / "summary.json";
    if (fs::is_regular_file(summary_file)) {
        const auto summary = nlohmann::json::parse(read_file(summary_file), nullptr, false);
        if (summary.is_object() && summary.contains("model_absolute") &&
            summary["model_absolute"].is_string()) {
            j["simplified"] = {{"summary", summary_file.string()},
                               {"criterion", summary.value("criterion", "")},
                               {"mode", summary.value("mode", "")}};
            const fs::path from = summary["model_absolute"].get<std::string>();
            j["simplified_from"] = from.string();
            dir = fs::is_directory(from) ? from : from.parent_path();
        }
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

const char* loss_on_name(LossOn l) {
    return l == LossOn::Responses ? "responses" : "all";
}

// ---- The trainer -------------------------------------------------------------------

struct StepResult {
    double loss = 0.0, grad_norm = 0.0, seconds = 0.0;
    int64_t loss_tokens = 0;
    float lr = 0.0f;
};

class LoraTrainer {
  public:
    LoraTrainer(const LoraTrainConfig& config, const LoraTrainOptions& options);

    void resume_or_initialize();
    void start_log();
    int64_t start_step() const { return start_step_; }
    int64_t end_step() const { return end_step_; }
    StepResult train_step(int64_t step);
    bool log_due(int64_t step) const;
    void log_step(int64_t step, const StepResult& r);
    bool checkpoint_due() const;
    void save_checkpoint();
    int stop_requested() const { return stop_signals_.signal(); }
    LoraTrainSummary finish(int stop_signal);

  private:
    void claim_run_folder();
    void load_base();
    void set_up_data();
    void set_up_adapters();
    void record_lost_segment();
    void say_what_runs() const;
    void add_energy_fields(const EnergyMeasurement& m, nlohmann::json& record) const;
    void load_checkpoint(const fs::path& dir, const nlohmann::json& state);
    TokenBatch next_batch();
    size_t row_at(uint64_t position);
    void log_write(const nlohmann::json& record) {
        if (run_log_) run_log_->write(record);
    }

    LoraTrainConfig config_;
    const LoraTrainOptions& options_;
    bool quiet_;
    StopSignals stop_signals_;
    std::optional<RunLock> run_lock_;
    EnergyMonitor energy_;
    std::optional<nlohmann::json> lost_segment_;
    double prior_joules_ = 0.0, prior_co2e_g_ = 0.0;

    std::string base_;  // as given: base_model_name_or_path of what is written
    fs::path base_dir_;
    std::optional<hf::HfModel> model_;
    std::optional<hf::Tokenizer> tokenizer_;
    LoraSpec spec_;
    TrainingSequences data_;
    uint64_t data_fingerprint_ = 0;
    int64_t loss_tokens_total_ = 0;
    std::unique_ptr<LoraParams> params_;
    std::unique_ptr<LoraModel> lora_model_;
    std::unique_ptr<AdamW> optimizer_;
    LrSchedule schedule_{};
    nlohmann::json config_json_;
    int accum_ = 1;
    int64_t tokens_per_step_ = 0;

    // Where training stands (what a checkpoint keeps).
    int64_t step_ = 0;            // optimizer steps done
    uint64_t rows_consumed_ = 0;  // sequences taken, over all epochs
    int64_t tokens_seen_ = 0;     // positions trained on
    double train_seconds_ = 0.0;  // in steps, over all segments
    uint64_t shuffled_epoch_ = ~0ULL;
    std::vector<size_t> order_;  // the rows of that epoch, shuffled

    bool resumed_ = false;
    std::vector<ConfigChange> resume_changes_;
    std::optional<RunLog> run_log_;
    LoraTrainSummary summary_;
    int64_t start_step_ = 0, end_step_ = 0, session_steps_ = 0;
    double session_train_seconds_ = 0.0;
    Clock::time_point loop_start_;
};

LoraTrainer::LoraTrainer(const LoraTrainConfig& config, const LoraTrainOptions& options)
    : config_(config), options_(options), quiet_(options.quiet), energy_(options.energy) {
    config_.validate();
    check(!options_.out_dir.empty(), "train: an output folder (--out) is required");
    usage_check(options_.spec.has_value() != !options_.adapter.empty(),
                "train: give new adapters with --lora SPEC or an adapter to train further with "
                "--adapter DIR, one of the two");
    usage_check(!options_.data_files.empty(),
                "train --lora: give the instruction data with --data FILE.jsonl");
    usage_check(!options_.base_model.empty() || !options_.adapter.empty(),
                "train --lora: give the Hugging Face base model with --init-from DIR");
    claim_run_folder();
    // Energy of this segment, added to what earlier segments spent (kept in the checkpoint).
    energy_.begin_window("run");
    if (!quiet_) {
        for (const std::string& w : config_.warnings())
            std::fprintf(stderr, "warning: %s\n", w.c_str());
    }
    load_base();
    set_up_data();
    set_up_adapters();
    check_setting_names(options_.resume_with_changes, config_json_, "setting of a LoRA run",
                        "checkpoint");
}

// One process at a time per run folder; an earlier run is refused or moved aside
// (--no-resume), and the leftovers of an unfinished save go.
void LoraTrainer::claim_run_folder() {
    const fs::path& out = options_.out_dir;
    fs::create_directories(out);
    run_lock_.emplace(out);
    usage_check(!options_.resume || !fs::exists(out / "checkpoints" / "latest") || is_lora_run(out),
                "{}: holds a full training run (greenmoe model checkpoints), not a LoRA run; use "
                "another --out, or resume that run without --lora / --adapter",
                out.string());
    RunFolderClaim claim = prepare_run_folder(
        out, options_.resume, options_.move_old_run,
        {"checkpoints", "log.jsonl", "emissions.csv", "config.json", "adapter", "merged"}, quiet_);
    summary_.moved_old_run = claim.moved_old_run;
    lost_segment_ = std::move(claim.lost_segment);
}

// The base memory-mapped (its weights are never written), and its tokenizer.
void LoraTrainer::load_base() {
    base_ = options_.base_model;
    if (base_.empty()) base_ = hf::lora_adapter_base(options_.adapter).string();
    base_dir_ = base_;
    model_.emplace(hf::HfModel::load(base_dir_));
    const fs::path tokenizer =
        options_.tokenizer.empty() ? base_dir_ : fs::path(options_.tokenizer);
    check(!fs::is_directory(tokenizer) || fs::exists(tokenizer / "tokenizer.json"),
          "{}: no tokenizer.json; give the model's tokenizer with --tokenizer (a tokenizer.json "
          "or the folder holding it)",
          tokenizer.string());
    tokenizer_.emplace(hf::Tokenizer::load(tokenizer));
}

void LoraTrainer::set_up_data() {
    InstructionDataOptions o = options_.data;
    o.seq_len = config_.seq_len;
    std::vector<InstructionExample> examples;
    for (const std::string& file : options_.data_files) {
        std::vector<InstructionExample> more = read_instruction_file(file, o);
        examples.insert(examples.end(), std::make_move_iterator(more.begin()),
                        std::make_move_iterator(more.end()));
    }
    const hf::ModelConfig& c = model_->config();
    std::optional<int> eos = tokenizer_->eos_id();
    if (!eos && !c.eos_token_ids.empty()) eos = c.eos_token_ids.front();
    check(eos.has_value(),
          "{}: neither the tokenizer ({}) nor the model names an end-of-sequence token, which "
          "ends every training example",
          c.source.string(), tokenizer_->source());
    const int32_t pad = pad_token_of(base_dir_, std::min(c.vocab_size, tokenizer_->vocab_size()),
                                     static_cast<int32_t>(*eos));
    data_ = build_training_sequences(examples, *tokenizer_, o, static_cast<int32_t>(*eos), pad);
    check(data_.rows >= 1,
          "--data: {} examples give no whole sequence of {} tokens (packing drops a final "
          "partial one); give more data, a smaller train.seq_len, or --no-pack",
          examples.size(), config_.seq_len);
    for (size_t i = 0; i < data_.ids.size(); ++i) {
        check(data_.ids[i] >= 0 && data_.ids[i] < c.vocab_size,
              "{}: token id {} is outside the model's vocabulary of {} ({}); is it the model's "
              "own tokenizer?",
              tokenizer_->source(), data_.ids[i], c.vocab_size, c.source.string());
    }
    TokenBatch all;
    all.rows = data_.rows;
    all.seq_len = data_.seq_len;
    all.labels = data_.labels;
    loss_tokens_total_ = all.predicted_tokens();
    check(loss_tokens_total_ > 0,
          "--data: no token of the {} training sequences carries loss: with --loss-on "
          "responses, the examples have no responses{}",
          data_.rows,
          data_.truncated > 0
              ? fmt::format(" or lose them to the cut: {} of {} examples are longer than "
                            "train.seq_len = {}",
                            data_.truncated, data_.examples, config_.seq_len)
              : std::string());
    data_fingerprint_ = fingerprint(data_);
}

void LoraTrainer::set_up_adapters() {
    const hf::HfModel& model = *model_;
    if (options_.spec) {
        spec_ = *options_.spec;
        params_ = std::make_unique<LoraParams>(
            LoraParams::create(model.weights(), model.config(), spec_, config_.seed));
    } else {
        spec_ = adapter_spec(options_.adapter);
        params_ = std::make_unique<LoraParams>(
            LoraParams::from_adapter(model.weights(), hf::read_lora_adapter(options_.adapter)));
    }
    lora_model_ = std::make_unique<LoraModel>(model, *params_, spec_.dropout);
    optimizer_ = std::make_unique<AdamW>(params_->layout(), config_.adamw);
    accum_ = config_.grad_accum_steps();
    tokens_per_step_ = static_cast<int64_t>(config_.batch_size) * config_.seq_len * accum_;
    // Hugging Face's get_cosine_schedule_with_warmup: the first step's rate is 0.
    schedule_ =
        LrSchedule{config_.lr, config_.min_lr_ratio, config_.warmup(), config_.max_steps, true};

    config_json_ = lora_train_config_to_json(config_);
    config_json_["lora"] = {{"r", spec_.rank},
                            {"alpha", spec_.alpha},
                            {"dropout", spec_.dropout},
                            {"rslora", spec_.rslora},
                            {"targets", spec_.targets}};
    config_json_["base"] = {
        {"model", base_}, {"tokenizer", options_.tokenizer}, {"adapter", options_.adapter}};
    config_json_["data"] = {{"files", options_.data_files},
                            {"template", options_.data.template_name},
                            {"loss_on", loss_on_name(options_.data.loss_on)},
                            {"text_field", options_.data.text_field},
                            {"pack", options_.data.pack}};
}

void LoraTrainer::load_checkpoint(const fs::path& dir, const nlohmann::json& state) {
    // The values into the layout this run built (the same as the saved run's), by name.
    const SafetensorsFile adapter = SafetensorsFile::open(dir / "adapter_model.safetensors");
    const ParamLayout& layout = params_->layout();
    check(adapter.tensors().size() == layout.specs().size(),
          "{}: {} tensors, this run's adapters have {}", adapter.path().string(),
          adapter.tensors().size(), layout.specs().size());
    const SafetensorsFile moments = SafetensorsFile::open(dir / "optimizer.safetensors");
    for (const ParamSpec& s : layout.specs()) {
        adapter.read_f32_into(s.name, params_->values() + s.offset, s.shape);
        moments.read_f32_into("m." + s.name, optimizer_->m() + s.offset, s.shape);
        moments.read_f32_into("v." + s.name, optimizer_->v() + s.offset, s.shape);
    }
    const fs::path file = dir / "state.json";
    try {
        optimizer_->set_step_count(state.at("adam_step").get<int64_t>());
        step_ = state.at("step").get<int64_t>();
        const nlohmann::json& d = state.at("data");
        rows_consumed_ = d.at("rows_consumed").get<uint64_t>();
        const auto rows = d.at("rows").get<int64_t>();
        const auto digest = d.at("fingerprint").get<std::string>();
        check(rows == data_.rows && digest == fmt::format("{:016x}", data_fingerprint_),
              "{}: the training data differ from the checkpoint's ({} sequences then, {} now{}): "
              "a data file or the tokenizer changed; restore them, or start over with "
              "--no-resume",
              file.string(), rows, data_.rows, rows == data_.rows ? ", other tokens" : "");
        tokens_seen_ = state.at("tokens_seen").get<int64_t>();
        train_seconds_ = state.at("train_seconds").get<double>();
        const auto energy = state.find("energy");
        if (energy != state.end() && energy->is_object()) {
            prior_joules_ = energy->value("joules", 0.0);
            prior_co2e_g_ = energy->value("co2e_g", 0.0);
        }
    } catch (const nlohmann::json::exception& e) {
        fail("{}: missing or malformed field ({})", file.string(), e.what());
    }
    check(step_ >= 0, "{}: negative step", file.string());
}

void LoraTrainer::resume_or_initialize() {
    std::optional<fs::path> from;
    if (options_.resume) from = latest_checkpoint(options_.out_dir);
    if (from) {
        const nlohmann::json state = read_json_file(*from / "state.json");
        usage_check(state.value("kind", "") == kRunKind,
                    "{}: not a LoRA run's checkpoint; use another --out, or resume that run "
                    "without --lora / --adapter",
                    from->string());
        check(state.value("version", 0) == kStateVersion, "{}: unsupported version {}",
              (*from / "state.json").string(), state.value("version", 0));
        resume_changes_ = check_resume_settings(
            state.at("config"), config_json_, *from, options_.resume_with_changes, fixed_on_resume,
            "the base, the adapters or the data each step sees");
        load_checkpoint(*from, state);
        resumed_ = true;
    }
    const fs::path config_file = options_.out_dir / "config.json";
    if (!resumed_ || !resume_changes_.empty() || !fs::exists(config_file)) {
        write_file_atomic(config_file, config_json_.dump(2) + "\n");
    }
    if (!resumed_) {
        const nlohmann::json parent = describe_parent(base_, *model_, options_.adapter);
        write_file_atomic(options_.out_dir / "parent.json", parent.dump(2) + "\n");
    }
    start_step_ = step_;
    end_step_ = options_.stop_at_step > 0 ? std::min(options_.stop_at_step, config_.max_steps)
                                          : config_.max_steps;
}

void LoraTrainer::record_lost_segment() {
    if (!lost_segment_ || !energy_.enabled()) return;
    const LostSegment lost =
        greenmoe::record_lost_segment(*lost_segment_, options_.out_dir, energy_);
    log_write(lost.log_record);
    prior_joules_ += lost.energy.total_joules_with_pue;
    prior_co2e_g_ += lost.energy.co2e_g;
}

void LoraTrainer::start_log() {
    run_log_.emplace(options_.out_dir / "log.jsonl", resumed_ ? step_ : 0);
    if (!run_log_->warning().empty() && !quiet_)
        std::fprintf(stderr, "warning: %s\n", run_log_->warning().c_str());
    record_lost_segment();
    nlohmann::json start = {{"type", "start"},
                            {"log_version", 2},
                            {"kind", kRunKind},
                            {"resumed_from_step", start_step_},
                            {"parameters", params_->num_parameters()},
                            {"base_parameters", model_->parameter_count()},
                            {"adapted_modules", params_->targets().size()},
                            {"tokens_per_step", tokens_per_step_},
                            {"grad_accum_steps", accum_},
                            {"warmup_steps", config_.warmup()},
                            {"sequences", data_.rows},
                            {"examples", data_.examples},
                            {"data_tokens", data_.tokens},
                            {"truncated_examples", data_.truncated},
                            {"dropped_tokens", data_.dropped_tokens},
                            {"loss_tokens", loss_tokens_total_},
                            {"config", config_json_}};
    if (!resume_changes_.empty()) {
        nlohmann::json changes = nlohmann::json::object();
        for (const ConfigChange& c : resume_changes_) changes[c.key] = {c.before, c.after};
        start["resumed_with_changes"] = changes;
    }
    if (!resumed_) start["init_from"] = base_;
    log_write(start);
    say_what_runs();
    loop_start_ = Clock::now();
}

void LoraTrainer::say_what_runs() const {
    if (quiet_) return;
    if (!resume_changes_.empty()) {
        std::fprintf(stderr, "greenmoe train: resuming with changed settings: %s\n",
                     describe_changes(resume_changes_).c_str());
    }
    std::string targets;
    for (const std::string& t : spec_.targets) targets += (targets.empty() ? "" : ",") + t;
    std::fprintf(stderr,
                 "greenmoe train: LoRA r=%lld alpha=%g dropout=%g on %zu modules (%s) of %s "
                 "(%s, %s parameters, frozen): %s trainable parameters\n",
                 static_cast<long long>(spec_.rank), spec_.alpha, spec_.dropout,
                 params_->targets().size(), targets.c_str(), base_.c_str(),
                 model_->config().model_type.c_str(),
                 format_count(static_cast<double>(model_->parameter_count())).c_str(),
                 format_count(static_cast<double>(params_->num_parameters())).c_str());
    const std::string resuming =
        start_step_ > 0 ? fmt::format(" (resuming at step {})", start_step_) : std::string();
    std::fprintf(stderr,
                 "greenmoe train: %lld examples → %lld sequences of %d tokens (%s with loss); "
                 "%d×%d tokens × %d micro-steps = %lld tokens per step, %lld steps%s\n",
                 static_cast<long long>(data_.examples), static_cast<long long>(data_.rows),
                 config_.seq_len, format_count(static_cast<double>(loss_tokens_total_)).c_str(),
                 config_.batch_size, config_.seq_len, accum_,
                 static_cast<long long>(tokens_per_step_),
                 static_cast<long long>(config_.max_steps), resuming.c_str());
    const int max_position = model_->config().rope.max_position;
    if (max_position > 0 && config_.seq_len > max_position) {
        std::fprintf(stderr,
                     "warning: train.seq_len = %d is longer than the model's "
                     "max_position_embeddings (%d): positions beyond it were never trained\n",
                     config_.seq_len, max_position);
    }
    if (data_.truncated > 0) {
        std::fprintf(stderr,
                     "warning: %lld of %lld examples are longer than train.seq_len = %d and were "
                     "cut (--no-pack)\n",
                     static_cast<long long>(data_.truncated),
                     static_cast<long long>(data_.examples), config_.seq_len);
    }
}

// ---- One step ----------------------------------------------------------------------

// The row at a position of the endless stream of epochs, each a fresh shuffle of the rows
// drawn from (seed, epoch): the same on every run and after every resume.
size_t LoraTrainer::row_at(uint64_t position) {
    const auto rows = static_cast<uint64_t>(data_.rows);
    const uint64_t epoch = position / rows;
    if (epoch != shuffled_epoch_) {
        order_.resize(static_cast<size_t>(rows));
        std::iota(order_.begin(), order_.end(), size_t{0});
        const uint64_t key = rng_key(config_.seed, kShuffleStream, epoch);
        for (uint64_t i = rows - 1; i > 0; --i) {  // Fisher-Yates
            const uint64_t j = rng_u64(key, i) % (i + 1);
            std::swap(order_[static_cast<size_t>(i)], order_[static_cast<size_t>(j)]);
        }
        shuffled_epoch_ = epoch;
    }
    return order_[static_cast<size_t>(position % rows)];
}

TokenBatch LoraTrainer::next_batch() {
    TokenBatch b;
    b.rows = config_.batch_size;
    b.seq_len = config_.seq_len;
    const auto T = static_cast<size_t>(b.seq_len);
    b.ids.resize(static_cast<size_t>(b.rows) * T);
    b.labels.resize(b.ids.size());
    for (size_t r = 0; r < static_cast<size_t>(b.rows); ++r) {
        const size_t row = row_at(rows_consumed_++);
        std::copy_n(data_.ids.begin() + static_cast<std::ptrdiff_t>(row * T), T,
                    b.ids.begin() + static_cast<std::ptrdiff_t>(r * T));
        std::copy_n(data_.labels.begin() + static_cast<std::ptrdiff_t>(row * T), T,
                    b.labels.begin() + static_cast<std::ptrdiff_t>(r * T));
    }
    return b;
}

// One optimizer step over the step's micro-batches: the gradient of the mean loss over all of
// the step's predicted tokens (as Hugging Face's Trainer scales by num_items_in_batch).
StepResult LoraTrainer::train_step(int64_t step) {
    const auto t0 = Clock::now();
    std::vector<TokenBatch> batches;
    batches.reserve(static_cast<size_t>(accum_));
    StepResult r;
    for (int micro = 0; micro < accum_; ++micro) {
        batches.push_back(next_batch());
        r.loss_tokens += batches.back().predicted_tokens();
    }
    const double loss_scale = r.loss_tokens > 0 ? 1.0 / static_cast<double>(r.loss_tokens) : 0.0;
    params_->zero_grads();
    double sum = 0.0;
    for (int micro = 0; micro < accum_; ++micro) {
        const uint64_t key = rng_key(config_.seed, kDropoutStream, static_cast<uint64_t>(step),
                                     static_cast<uint64_t>(micro));
        sum +=
            lora_model_->forward_backward(batches[static_cast<size_t>(micro)], loss_scale, key).sum;
    }
    r.loss = sum * loss_scale;
    check(std::isfinite(r.loss), "training diverged: loss is {} at step {}", r.loss, step + 1);

    const ParamLayout& layout = params_->layout();
    r.grad_norm = grad_norm(params_->grads(), layout);
    if (config_.grad_clip > 0) clip_grads(params_->grads(), layout, r.grad_norm, config_.grad_clip);
    r.lr = schedule_.at(step);
    optimizer_->step(params_->values(), params_->grads(), r.lr);
    r.seconds = seconds_since(t0);

    step_ = step + 1;
    tokens_seen_ += tokens_per_step_;
    train_seconds_ += r.seconds;
    session_train_seconds_ += r.seconds;
    session_steps_ += 1;
    summary_.final_train_loss = r.loss;
    return r;
}

bool LoraTrainer::log_due(int64_t step) const {
    const int64_t n = step + 1;
    return n == 1 || n % config_.log_every == 0 || n == config_.max_steps || n == end_step_;
}

void LoraTrainer::add_energy_fields(const EnergyMeasurement& m, nlohmann::json& record) const {
    if (!energy_.enabled()) return;
    const double joules = prior_joules_ + m.total_joules_with_pue;
    record["energy_j"] = joules;
    record["co2e_g"] = prior_co2e_g_ + m.co2e_g;
    record["j_per_token"] = tokens_seen_ > 0 ? joules / static_cast<double>(tokens_seen_) : 0.0;
    record["energy_source"] = m.source_label;
    record["pue"] = m.total_joules > 0 ? m.total_joules_with_pue / m.total_joules : m.pue;
    record["segment"] = segment_json(m);  // what the next run records if this one is killed
}

void LoraTrainer::log_step(int64_t step, const StepResult& r) {
    const double tok_per_s = static_cast<double>(tokens_per_step_) / r.seconds;
    const double elapsed = seconds_since(loop_start_);
    nlohmann::json record = {{"type", "train"},
                             {"step", step + 1},
                             {"loss", r.loss},
                             {"lr", r.lr},
                             {"grad_norm", r.grad_norm},
                             {"tokens", tokens_seen_},
                             {"loss_tokens", r.loss_tokens},
                             {"tokens_per_s", tok_per_s},
                             {"step_ms", r.seconds * 1e3},
                             {"train_seconds", train_seconds_},
                             {"elapsed_s", elapsed}};
    const EnergyMeasurement m = energy_.enabled() ? energy_.peek("run") : EnergyMeasurement{};
    add_energy_fields(m, record);
    log_write(record);
    if (quiet_) return;
    const double per_step = elapsed / static_cast<double>(session_steps_);
    std::string energy;
    if (energy_.enabled()) {
        energy = " | ";
        energy += energy_.progress_text(m);
    }
    std::fprintf(
        stderr,
        "step %5lld/%lld | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s | %.0f ms | "
        "ETA %s%s\n",
        static_cast<long long>(step + 1), static_cast<long long>(config_.max_steps), r.loss, r.lr,
        r.grad_norm, tok_per_s, r.seconds * 1e3,
        ProgressBar::format_duration(per_step * static_cast<double>(end_step_ - step - 1)).c_str(),
        energy.c_str());
}

bool LoraTrainer::checkpoint_due() const {
    return (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0) ||
           step_ == end_step_;
}

// checkpoints/step_N: the PEFT adapter (so the folder is an adapter `eval --adapter` takes),
// the AdamW moments and state.json, written into a temporary folder renamed into place.
void LoraTrainer::save_checkpoint() {
    summary_.last_checkpoint = publish_checkpoint(
        options_.out_dir, step_, config_.keep_checkpoints, [&](const fs::path& tmp_dir) {
            write_peft_adapter(tmp_dir, *params_, spec_, base_);
            write_safetensors(tmp_dir / "optimizer.safetensors",
                              adam_moment_tensors(params_->layout(), *optimizer_),
                              {{"adam_step", std::to_string(optimizer_->step_count())}});
            nlohmann::json state = {
                {"version", kStateVersion},
                {"kind", kRunKind},
                {"step", step_},
                {"adam_step", optimizer_->step_count()},
                {"data",
                 {{"rows_consumed", rows_consumed_},
                  {"rows", data_.rows},
                  {"epoch", rows_consumed_ / static_cast<uint64_t>(data_.rows)},
                  {"row_in_epoch", rows_consumed_ % static_cast<uint64_t>(data_.rows)},
                  {"examples", data_.examples},
                  {"fingerprint", fmt::format("{:016x}", data_fingerprint_)}}},
                {"tokens_seen", tokens_seen_},
                {"train_seconds", train_seconds_},
                // Every random draw (data order, dropout) is a function of (seed, epoch or
                // step, micro-batch): the seed and the position are the whole generator state.
                {"rng", {{"scheme", "counter-based splitmix64"}, {"seed", config_.seed}}},
                {"lora", spec_.to_string()},
                {"base_model", base_},
                {"config", config_json_},
            };
            if (energy_.enabled()) {
                const EnergyMeasurement m = energy_.peek("run");
                state["energy"] = {{"joules", prior_joules_ + m.total_joules_with_pue},
                                   {"co2e_g", prior_co2e_g_ + m.co2e_g}};
            }
            write_file_atomic(tmp_dir / "state.json", state.dump(2) + "\n");
        });
}

// ---- The end -----------------------------------------------------------------------

// A complete run writes OUT/adapter (and OUT/merged) inside the energy window; then the
// segment's emissions row, the end and done records, and the console summary.
LoraTrainSummary LoraTrainer::finish(int stop_signal) {
    summary_.stop_signal = stop_signal;
    const bool complete = stop_signal == 0 && step_ >= config_.max_steps;
    if (complete) {
        summary_.adapter_dir = options_.out_dir / "adapter";
        write_peft_adapter(summary_.adapter_dir, *params_, spec_, base_);
        if (options_.merge) {
            // From the adapter as written, so that OUT/merged is exactly what merging
            // OUT/adapter (merge-adapter, PEFT's merge_and_unload) gives.
            summary_.merged_dir = options_.out_dir / "merged";
            ModelFolderWriteOptions o;
            o.overwrite = true;
            hf::write_merged_model(base_dir_, hf::read_lora_adapter(summary_.adapter_dir),
                                   summary_.merged_dir, o);
        }
    }
    const EnergyMeasurement segment = energy_.end_window("run");
    if (energy_.enabled()) {
        EmissionsCsv(options_.out_dir / "emissions.csv").append(energy_.emissions_row(segment));
        summary_.energy_joules = prior_joules_ + segment.total_joules_with_pue;
        summary_.co2e_g = prior_co2e_g_ + segment.co2e_g;
    }
    nlohmann::json end = {{"type", "end"}, {"last_step", step_}};
    if (stop_signal != 0) end["stopped_by"] = signal_name(stop_signal);
    log_write(end);
    summary_.steps_done = step_;
    summary_.tokens_per_second =
        session_train_seconds_ > 0
            ? static_cast<double>(session_steps_ * tokens_per_step_) / session_train_seconds_
            : 0.0;
    if (complete) {
        if (session_steps_ == 0) {
            summary_.final_train_loss = last_logged_train_loss(options_.out_dir / "log.jsonl");
        }
        nlohmann::json done = {{"type", "done"},
                               {"step", step_},
                               {"train_loss", summary_.final_train_loss},
                               {"tokens", tokens_seen_},
                               {"train_seconds", train_seconds_},
                               {"adapter", summary_.adapter_dir.string()}};
        if (!summary_.merged_dir.empty()) done["merged"] = summary_.merged_dir.string();
        add_energy_fields(segment, done);
        done.erase("segment");
        log_write(done);
    }
    if (stop_signal != 0) {
        std::fprintf(stderr,
                     "greenmoe train: stopped by %s after step %lld, saved in %s; run the same "
                     "command again to resume\n",
                     signal_name(stop_signal), static_cast<long long>(step_),
                     summary_.last_checkpoint.c_str());
    }
    if (quiet_) return summary_;
    std::fprintf(stderr, "done: %lld steps, %s tokens, train loss %.4f, %.0f tok/s\n",
                 static_cast<long long>(step_),
                 format_count(static_cast<double>(tokens_seen_)).c_str(), summary_.final_train_loss,
                 summary_.tokens_per_second);
    if (complete) {
        std::fprintf(
            stderr, "adapter: %s%s%s\n", summary_.adapter_dir.c_str(),
            summary_.merged_dir.empty() ? "" : "; merged model: ", summary_.merged_dir.c_str());
    }
    if (energy_.enabled()) std::fprintf(stderr, "%s\n", energy_.summary_line(segment).c_str());
    return summary_;
}

}  // namespace

bool is_lora_run(const fs::path& run_dir) {
    std::error_code ec;
    const fs::path config = run_dir / "config.json";
    if (fs::is_regular_file(config, ec)) {
        const auto j = nlohmann::json::parse(read_file(config), nullptr, false);
        if (j.is_object() && j.contains("lora")) return true;
    }
    const fs::path pointer = run_dir / "checkpoints" / "latest";
    if (!fs::is_regular_file(pointer, ec)) return false;
    std::string name = read_file(pointer);
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
    const fs::path state = run_dir / "checkpoints" / name / "state.json";
    if (name.empty() || !fs::is_regular_file(state, ec)) return false;
    const auto j = nlohmann::json::parse(read_file(state), nullptr, false);
    return j.is_object() && j.value("kind", "") == kRunKind;
}

LoraTrainSummary train_lora(const LoraTrainConfig& config, const LoraTrainOptions& options) {
    LoraTrainer trainer(config, options);  // run folder, base, data, adapters, optimizer
    trainer.resume_or_initialize();
    trainer.start_log();
    int stop = 0;
    for (int64_t step = trainer.start_step(); step < trainer.end_step(); ++step) {
        const StepResult r = trainer.train_step(step);  // micro-batches, then the update
        stop = trainer.stop_requested();
        if (trainer.log_due(step) || stop) trainer.log_step(step, r);
        if (trainer.checkpoint_due() || stop) trainer.save_checkpoint();
        if (stop) break;  // SIGINT / SIGTERM: the step is saved, the process can end
    }
    return trainer.finish(stop);
}

}  // namespace greenmoe::lora

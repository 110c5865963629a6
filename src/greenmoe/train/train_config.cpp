// TrainConfig JSON and validation (see train_config.h).
#include "greenmoe/train/train_config.h"

#include <set>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/core/json_util.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe {

int TrainConfig::grad_accum_steps(int world) const {
    const int64_t micro = static_cast<int64_t>(batch_size) * seq_len * world;
    const int64_t total = total_batch_tokens > 0 ? total_batch_tokens : micro;
    check(total % micro == 0,
          "train.total_batch_tokens ({}) must be a multiple of batch_size × seq_len × ranks "
          "({} × {} × {} = {})",
          total, batch_size, seq_len, world, micro);
    return static_cast<int>(total / micro);
}

void TrainConfig::validate() const {
    GptConfig m = model;
    m.finalize();
    check(batch_size >= 1, "train.batch_size must be ≥ 1, got {}", batch_size);
    check(seq_len >= 1 && seq_len <= m.block_size,
          "train.seq_len must be in [1, model.block_size = {}], got {}", m.block_size, seq_len);
    check(max_steps >= 1, "train.max_steps must be ≥ 1, got {}", max_steps);
    check(lr > 0, "train.lr must be > 0, got {}", lr);
    check(min_lr_ratio >= 0 && min_lr_ratio <= 1, "train.min_lr_ratio must be in [0, 1]");
    check(warmup_steps >= 0, "train.warmup_steps must be ≥ 0");
    check(grad_clip >= 0, "train.grad_clip must be ≥ 0 (0 = no clipping), got {}", grad_clip);
    check(adamw.beta1 >= 0 && adamw.beta1 < 1 && adamw.beta2 >= 0 && adamw.beta2 < 1,
          "train.beta1 and train.beta2 must be in [0, 1)");
    check(log_every >= 1, "train.log_every must be ≥ 1");
    check(val_every >= 0 && sample_every >= 0 && checkpoint_every >= 0,
          "eval.val_every, eval.sample_every and checkpoint.every must be ≥ 0");
    check(val_tokens >= 1, "eval.val_tokens must be ≥ 1");
    check(hellaswag_every >= 0 && hellaswag_limit >= 0,
          "eval.hellaswag_every and eval.hellaswag_limit must be ≥ 0");
    check(top_k >= 0 && temperature > 0, "eval.top_k must be ≥ 0 and eval.temperature > 0");
    check(keep_checkpoints >= 1, "checkpoint.keep must be ≥ 1");
    check(!dataset.empty() || !train_data.empty(),
          "data: give data.dataset or data.train (a shard pattern)");
    (void)grad_accum_steps();
}

std::vector<std::string> TrainConfig::warnings() const {
    std::vector<std::string> out;
    if (warmup_steps > max_steps) {
        out.push_back(fmt::format(
            "train.warmup_steps ({}) > train.max_steps ({}): the learning rate never reaches "
            "train.lr",
            warmup_steps, max_steps));
    }
    return out;
}

namespace {

// A value as a user wrote it: floats stored from a float field print as that float
// (0.0006, not 0.0006000000284984708).
std::string show_value(const nlohmann::json& v) {
    if (v.is_null()) return "(absent)";
    if (v.is_number_float()) {
        const double d = v.get<double>();
        const auto f = static_cast<float>(d);
        return static_cast<double>(f) == d ? fmt::format("{}", f) : fmt::format("{}", d);
    }
    return v.dump();
}

}  // namespace

std::vector<ConfigChange> config_changes(const nlohmann::json& before,
                                         const nlohmann::json& after) {
    std::vector<ConfigChange> out;
    const auto at = [](const nlohmann::json& j, const std::string& key) {
        const auto it = j.find(key);
        return it == j.end() ? nlohmann::json() : *it;
    };
    std::set<std::string> sections;
    for (const auto& [k, v] : before.items()) sections.insert(k);
    for (const auto& [k, v] : after.items()) sections.insert(k);
    for (const std::string& section : sections) {
        const nlohmann::json a = at(before, section), b = at(after, section);
        if (!a.is_object() || !b.is_object()) {
            if (a != b) out.push_back({section, a, b});
            continue;
        }
        std::set<std::string> keys;
        for (const auto& [k, v] : a.items()) keys.insert(k);
        for (const auto& [k, v] : b.items()) keys.insert(k);
        for (const std::string& key : keys) {
            const nlohmann::json x = at(a, key), y = at(b, key);
            if (x != y) out.push_back({section + "." + key, x, y});
        }
    }
    return out;
}

std::string describe_changes(const std::vector<ConfigChange>& changes) {
    std::string out;
    for (const ConfigChange& c : changes) {
        if (!out.empty()) out += "; ";
        out += c.key;
        out += " was ";
        out += show_value(c.before);
        out += ", now ";
        out += show_value(c.after);
    }
    return out;
}

nlohmann::json train_config_to_json(const TrainConfig& c) {
    GptConfig m = c.model;
    m.finalize();
    nlohmann::json j;
    j["model"] = m;
    j["train"] = {{"batch_size", c.batch_size},
                  {"seq_len", c.seq_len},
                  {"total_batch_tokens", c.total_batch_tokens},
                  {"max_steps", c.max_steps},
                  {"lr", c.lr},
                  {"min_lr_ratio", c.min_lr_ratio},
                  {"warmup_steps", c.warmup_steps},
                  {"beta1", c.adamw.beta1},
                  {"beta2", c.adamw.beta2},
                  {"eps", c.adamw.eps},
                  {"weight_decay", c.adamw.weight_decay},
                  {"grad_clip", c.grad_clip},
                  {"seed", c.seed},
                  {"log_every", c.log_every}};
    j["eval"] = {{"val_every", c.val_every},
                 {"val_tokens", c.val_tokens},
                 {"sample_every", c.sample_every},
                 {"sample_tokens", c.sample_tokens},
                 {"top_k", c.top_k},
                 {"temperature", c.temperature},
                 {"sample_prompt", c.sample_prompt},
                 {"hellaswag_every", c.hellaswag_every},
                 {"hellaswag_limit", c.hellaswag_limit},
                 {"hellaswag_data", c.hellaswag_data}};
    j["checkpoint"] = {{"every", c.checkpoint_every}, {"keep", c.keep_checkpoints}};
    j["data"] = {{"dataset", c.dataset}, {"train", c.train_data}, {"val", c.val_data}};
    return j;
}

TrainConfig train_config_from_json(const nlohmann::json& j) {
    TrainConfig c;
    JsonReader top(j, "config");
    top.mark("model");
    top.mark("train");
    top.mark("eval");
    top.mark("checkpoint");
    top.mark("data");
    top.mark("comment");
    top.finish();
    if (j.contains("model")) from_json(j.at("model"), c.model);
    if (j.contains("train")) {
        JsonReader r(j.at("train"), "train");
        r.get("batch_size", c.batch_size);
        r.get("seq_len", c.seq_len);
        r.get("total_batch_tokens", c.total_batch_tokens);
        r.get("max_steps", c.max_steps);
        r.get("lr", c.lr);
        r.get("min_lr_ratio", c.min_lr_ratio);
        r.get("warmup_steps", c.warmup_steps);
        r.get("beta1", c.adamw.beta1);
        r.get("beta2", c.adamw.beta2);
        r.get("eps", c.adamw.eps);
        r.get("weight_decay", c.adamw.weight_decay);
        r.get("grad_clip", c.grad_clip);
        r.get("seed", c.seed);
        r.get("log_every", c.log_every);
        r.finish();
    }
    if (j.contains("eval")) {
        JsonReader r(j.at("eval"), "eval");
        r.get("val_every", c.val_every);
        r.get("val_tokens", c.val_tokens);
        r.get("sample_every", c.sample_every);
        r.get("sample_tokens", c.sample_tokens);
        r.get("top_k", c.top_k);
        r.get("temperature", c.temperature);
        r.get("sample_prompt", c.sample_prompt);
        r.get("hellaswag_every", c.hellaswag_every);
        r.get("hellaswag_limit", c.hellaswag_limit);
        r.get("hellaswag_data", c.hellaswag_data);
        r.finish();
    }
    if (j.contains("checkpoint")) {
        JsonReader r(j.at("checkpoint"), "checkpoint");
        r.get("every", c.checkpoint_every);
        r.get("keep", c.keep_checkpoints);
        r.finish();
    }
    if (j.contains("data")) {
        JsonReader r(j.at("data"), "data");
        r.get("dataset", c.dataset);
        r.get("train", c.train_data);
        r.get("val", c.val_data);
        r.finish();
    }
    c.model.finalize();
    c.validate();
    return c;
}

void apply_override(nlohmann::json& j, const std::string& assignment) {
    const auto eq = assignment.find('=');
    usage_check(eq != std::string::npos && eq > 0,
                "--set {}: expected section.key=value (e.g. train.lr=3e-4)", assignment);
    const std::string path = assignment.substr(0, eq);
    const std::string text = assignment.substr(eq + 1);
    const auto dot = path.find('.');
    usage_check(dot != std::string::npos && dot > 0 && dot + 1 < path.size(),
                "--set {}: expected section.key=value (e.g. train.lr=3e-4)", assignment);
    nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded()) value = text;  // a bare word is a string
    j[path.substr(0, dot)][path.substr(dot + 1)] = value;
}

namespace {

// A preset may start from another ("extends": "nano.json", relative to its own folder)
// and change only what differs (JSON merge patch).
nlohmann::json load_preset(const std::filesystem::path& path, int depth) {
    check(depth < 8, "{}: \"extends\" chain too deep (a cycle?)", path.string());
    nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
    check(!j.is_discarded() && j.is_object(), "{}: not a JSON object (config preset)",
          path.string());
    if (!j.contains("extends")) return j;
    check(j["extends"].is_string(), "{}: \"extends\" must name a preset file", path.string());
    nlohmann::json base =
        load_preset(path.parent_path() / j["extends"].get<std::string>(), depth + 1);
    j.erase("extends");
    base.merge_patch(j);
    return base;
}

}  // namespace

nlohmann::json load_config_json(const std::string& path, const std::vector<std::string>& sets) {
    nlohmann::json j = nlohmann::json::object();
    if (!path.empty()) j = load_preset(path, 0);
    for (const auto& s : sets) apply_override(j, s);
    return j;
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& sets) {
    const nlohmann::json j = load_config_json(path, sets);
    try {
        return train_config_from_json(j);
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {
        // Messages name the key at fault ("train.max_steps must be ≥ 1"); when the user set
        // it on the command line, the command line is what is wrong.
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

}  // namespace greenmoe

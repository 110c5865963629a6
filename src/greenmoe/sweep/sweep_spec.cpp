// Reading a sweep spec and expanding it into its grid of runs (see sweep_spec.h).
#include "greenmoe/sweep/sweep_spec.h"

#include <algorithm>
#include <map>
#include <set>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/train/train_config.h"

namespace greenmoe::sweep {

namespace fs = std::filesystem;
using ordered = nlohmann::ordered_json;

namespace {

// The five knobs a mechanism turns on or off (docs/moe.md).
constexpr const char* kMechanismKeys[] = {"model.w_load", "model.w_importance", "model.lambda_z",
                                          "model.w_penalty", "model.bias_gamma"};

// Labels become parts of folder names: letters, digits and . + - only.
bool label_is_plain(const std::string& s) {
    if (s.empty() || s == "." || s == "..") return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '+' || c == '-';
    });
}

std::string scalar_label(const ordered& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
}

bool is_config_key(const std::string& key) {
    return key.find('.') != std::string::npos;
}

// The settings of one named mechanism: all five knobs off, then its own.
std::vector<std::pair<std::string, nlohmann::json>> mechanism_settings(const ordered& entry,
                                                                       const std::string& where) {
    check(entry.is_object(), "{}: expected an object of \"section.key\": value, got {}", where,
          entry.dump());
    std::vector<std::pair<std::string, nlohmann::json>> settings;
    for (const char* key : kMechanismKeys) settings.emplace_back(key, 0);
    for (auto it = entry.begin(); it != entry.end(); ++it) {
        check(is_config_key(it.key()), "{}.{}: expected a \"section.key\" setting", where,
              it.key());
        const nlohmann::json value = nlohmann::json::parse(it.value().dump());
        const auto same = std::find_if(settings.begin(), settings.end(),
                                       [&](const auto& s) { return s.first == it.key(); });
        if (same != settings.end()) {
            same->second = value;
        } else {
            settings.emplace_back(it.key(), value);
        }
    }
    return settings;
}

AxisValue read_axis_value(const std::string& axis, const ordered& v, const ordered& mechanisms,
                          const std::string& where) {
    AxisValue out;
    if (v.is_object()) {
        for (auto it = v.begin(); it != v.end(); ++it) {
            check(it.key() == "label" || it.key() == "set",
                  "{}.{}: unknown key (known: label, set)", where, it.key());
        }
        check(v.contains("label") && v["label"].is_string(), "{}: expected a \"label\" string",
              where);
        check(v.contains("set") && v["set"].is_object(),
              "{}: expected \"set\", an object of \"section.key\": value", where);
        out.label = v["label"].get<std::string>();
        for (auto it = v["set"].begin(); it != v["set"].end(); ++it) {
            check(is_config_key(it.key()), "{}.set.{}: expected a \"section.key\" setting", where,
                  it.key());
            out.settings.emplace_back(it.key(), nlohmann::json::parse(it.value().dump()));
        }
    } else if (axis == "mechanism") {
        check(v.is_string(), "{}: expected a mechanism name, got {}", where, v.dump());
        out.label = v.get<std::string>();
        const auto entry = mechanisms.find(out.label);
        if (entry == mechanisms.end()) {
            std::string known;
            for (auto it = mechanisms.begin(); it != mechanisms.end(); ++it)
                known += (known.empty() ? "" : ", ") + it.key();
            fail("{}: unknown mechanism \"{}\" (known: {}; add it under \"mechanisms\")", where,
                 out.label, known);
        }
        out.settings = mechanism_settings(*entry, fmt::format("mechanisms.{}", out.label));
    } else {
        check(is_config_key(axis),
              "{}: axis \"{}\" is neither a \"section.key\" setting nor \"mechanism\"; give its "
              "values as {{\"label\": …, \"set\": {{…}}}} objects",
              where, axis);
        check(v.is_primitive() && !v.is_null(), "{}: expected a string, number or boolean, got {}",
              where, v.dump());
        out.label = scalar_label(v);
        out.settings.emplace_back(axis, nlohmann::json::parse(v.dump()));
    }
    check(label_is_plain(out.label),
          "{}: the label \"{}\" names run folders: use letters, digits, '.', '+' and '-' only "
          "(or give the value as {{\"label\": …, \"set\": {{…}}}})",
          where, out.label);
    return out;
}

// A pattern of "exclude" or "baseline": axis → accepted labels.
using Pattern = std::map<std::string, std::set<std::string>>;

Pattern read_pattern(const ordered& j, const std::vector<Axis>& axes, const std::string& where,
                     bool single_values) {
    check(j.is_object() && !j.empty(), "{}: expected an object of axis: value", where);
    Pattern pattern;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const auto axis = std::find_if(axes.begin(), axes.end(),
                                       [&](const Axis& a) { return a.key == it.key(); });
        check(axis != axes.end(), "{}.{}: not an axis of this sweep", where, it.key());
        std::vector<ordered> values;
        if (it.value().is_array() && !single_values) {
            values.assign(it.value().begin(), it.value().end());
        } else {
            values.push_back(it.value());
        }
        for (const ordered& v : values) {
            check(v.is_primitive() && !v.is_null(), "{}.{}: expected a value label, got {}", where,
                  it.key(), v.dump());
            const std::string label = scalar_label(v);
            check(std::any_of(axis->values.begin(), axis->values.end(),
                              [&](const AxisValue& av) { return av.label == label; }),
                  "{}.{}: \"{}\" is not one of the axis's values", where, it.key(), label);
            pattern[it.key()].insert(label);
        }
    }
    return pattern;
}

bool matches(const Pattern& pattern, const std::vector<std::pair<std::string, std::string>>& vals) {
    for (const auto& [axis, labels] : pattern) {
        const auto v =
            std::find_if(vals.begin(), vals.end(), [&](const auto& p) { return p.first == axis; });
        if (v == vals.end() || !labels.count(v->second)) return false;
    }
    return true;
}

std::string assignment(const std::string& key, const nlohmann::json& value) {
    return fmt::format("{}={}", key, value.dump());
}

}  // namespace

nlohmann::json builtin_mechanisms() {
    return {{"none", nlohmann::json::object()},
            {"load", {{"model.w_load", 0.1}}},
            {"importance", {{"model.w_importance", 0.1}}},
            {"z", {{"model.lambda_z", 0.1}}},
            {"penalty", {{"model.w_penalty", 0.1}}},
            {"bias", {{"model.bias_gamma", 0.001}}}};
}

SweepPlan read_sweep_plan(const fs::path& spec_file) {
    const std::string file = spec_file.string();
    ordered spec;
    try {
        spec = ordered::parse(read_file(spec_file));
    } catch (const nlohmann::json::exception& e) {
        fail("{}: not valid JSON ({})", file, e.what());
    }
    check(spec.is_object(), "{}: expected a JSON object", file);
    for (auto it = spec.begin(); it != spec.end(); ++it) {
        static const std::set<std::string> known = {"comment",    "base",  "set",     "axes",
                                                    "mechanisms", "seeds", "exclude", "baseline"};
        check(known.count(it.key()) > 0,
              "{}: unknown key \"{}\" (known: comment, base, set, axes, mechanisms, seeds, "
              "exclude, baseline)",
              file, it.key());
    }

    SweepPlan plan;
    plan.spec_file = spec_file;
    plan.spec = nlohmann::json::parse(spec.dump());
    check(spec.contains("base") && spec["base"].is_string(),
          "{}: expected \"base\", the path of a preset (relative to the spec file)", file);
    const fs::path base = spec["base"].get<std::string>();
    plan.base =
        fs::absolute(base.is_absolute() ? base : spec_file.parent_path() / base).lexically_normal();
    check(fs::is_regular_file(plan.base), "{}: base: {} is not a file", file, plan.base.string());

    // Settings every run shares.
    std::vector<std::string> common;
    if (spec.contains("set")) {
        check(spec["set"].is_object(), "{}: set: expected an object of \"section.key\": value",
              file);
        for (auto it = spec["set"].begin(); it != spec["set"].end(); ++it) {
            check(is_config_key(it.key()), "{}: set.{}: expected a \"section.key\" setting", file,
                  it.key());
            check(it.key() != "train.seed", "{}: set.train.seed: seeds are given by \"seeds\"",
                  file);
            common.push_back(assignment(it.key(), nlohmann::json::parse(it.value().dump())));
        }
    }

    ordered mechanisms = ordered::parse(builtin_mechanisms().dump());
    if (spec.contains("mechanisms")) {
        check(spec["mechanisms"].is_object(), "{}: mechanisms: expected an object of name: {{…}}",
              file);
        for (auto it = spec["mechanisms"].begin(); it != spec["mechanisms"].end(); ++it)
            mechanisms[it.key()] = it.value();
    }

    check(spec.contains("axes") && spec["axes"].is_object() && !spec["axes"].empty(),
          "{}: expected \"axes\", an object of axis: [values]", file);
    std::set<std::string> short_names;
    for (auto it = spec["axes"].begin(); it != spec["axes"].end(); ++it) {
        const std::string where = fmt::format("{}: axes.{}", file, it.key());
        check(it.value().is_array(), "{}: expected an array of values", where);
        check(!it.value().empty(), "{}: the axis is empty (give at least one value)", where);
        check(it.key() != "train.seed", "{}: seeds are given by \"seeds\"", where);
        Axis axis;
        axis.key = it.key();
        axis.short_name = axis.key.substr(axis.key.rfind('.') + 1);
        check(label_is_plain(axis.short_name) && axis.short_name != "seed",
              "{}: the axis name \"{}\" names run folders: use letters, digits, '.', '+' and '-'",
              where, axis.short_name);
        check(short_names.insert(axis.short_name).second,
              "{}: two axes end in \"{}\" (run folder names would clash)", where, axis.short_name);
        std::set<std::string> labels;
        for (size_t i = 0; i < it.value().size(); ++i) {
            AxisValue v = read_axis_value(axis.key, it.value()[i], mechanisms,
                                          fmt::format("{}[{}]", where, i));
            check(labels.insert(v.label).second, "{}: \"{}\" appears twice", where, v.label);
            axis.values.push_back(std::move(v));
        }
        plan.axes.push_back(std::move(axis));
    }

    // Seeds: a list, or a count starting at the base preset's seed.
    const TrainConfig base_config = load_train_config(plan.base.string(), {});
    if (!spec.contains("seeds")) {
        plan.seeds = {base_config.seed};
    } else if (spec["seeds"].is_number_unsigned()) {
        const uint64_t n = spec["seeds"].get<uint64_t>();
        check(n >= 1 && n <= 1000, "{}: seeds: expected a count from 1 to 1000 or a list, got {}",
              file, n);
        for (uint64_t i = 0; i < n; ++i) plan.seeds.push_back(base_config.seed + i);
    } else {
        check(spec["seeds"].is_array() && !spec["seeds"].empty(),
              "{}: seeds: expected a count or a non-empty list of whole numbers ≥ 0", file);
        for (const ordered& s : spec["seeds"]) {
            check(s.is_number_unsigned(), "{}: seeds: expected whole numbers ≥ 0, got {}", file,
                  s.dump());
            const uint64_t seed = s.get<uint64_t>();
            check(std::find(plan.seeds.begin(), plan.seeds.end(), seed) == plan.seeds.end(),
                  "{}: seeds: {} appears twice", file, seed);
            plan.seeds.push_back(seed);
        }
    }

    std::vector<Pattern> excluded;
    if (spec.contains("exclude")) {
        check(spec["exclude"].is_array(), "{}: exclude: expected an array of {{axis: values}}",
              file);
        for (size_t i = 0; i < spec["exclude"].size(); ++i) {
            excluded.push_back(read_pattern(spec["exclude"][i], plan.axes,
                                            fmt::format("{}: exclude[{}]", file, i), false));
        }
    }

    // The grid: the last axis varies fastest, seeds innermost.
    std::vector<size_t> index(plan.axes.size(), 0);
    std::vector<std::string> settings;
    while (true) {
        std::vector<std::pair<std::string, std::string>> values;
        std::vector<std::string> overrides = common;
        std::string setting;
        for (size_t a = 0; a < plan.axes.size(); ++a) {
            const AxisValue& v = plan.axes[a].values[index[a]];
            values.emplace_back(plan.axes[a].key, v.label);
            for (const auto& [key, value] : v.settings) overrides.push_back(assignment(key, value));
            setting += fmt::format("{}{}-{}", setting.empty() ? "" : "_", plan.axes[a].short_name,
                                   v.label);
        }
        const bool skip = std::any_of(excluded.begin(), excluded.end(),
                                      [&](const Pattern& p) { return matches(p, values); });
        if (!skip) {
            settings.push_back(setting);
            for (const uint64_t seed : plan.seeds) {
                SweepRunState run;
                run.setting = setting;
                run.name = fmt::format("{}_seed-{}", setting, seed);
                run.values = values;
                run.seed = seed;
                run.overrides = overrides;
                run.overrides.push_back(fmt::format("train.seed={}", seed));
                plan.runs.push_back(std::move(run));
            }
        }
        size_t a = plan.axes.size();
        while (a > 0 && ++index[a - 1] == plan.axes[a - 1].values.size()) index[--a] = 0;
        if (a == 0) break;
    }
    check(!plan.runs.empty(), "{}: exclude leaves no run", file);

    // Every run's configuration, loaded now so that nothing starts on a grid that would fail.
    for (const SweepRunState& run : plan.runs) {
        try {
            (void)load_train_config(plan.base.string(), run.overrides);
        } catch (const Error& e) {
            std::string sets;
            for (const std::string& s : run.overrides) sets += fmt::format(" --set {}", s);
            fail("{}: run {} is not a valid configuration: {} (its settings:{})", file, run.name,
                 e.what(), sets);
        }
    }

    // The baseline: given, else the dense MLP without a mechanism when the grid has one.
    if (spec.contains("baseline") && !spec["baseline"].is_null()) {
        const Pattern pattern =
            read_pattern(spec["baseline"], plan.axes, fmt::format("{}: baseline", file), true);
        check(pattern.size() == plan.axes.size(), "{}: baseline: give a value for every axis",
              file);
        for (const SweepRunState& run : plan.runs) {
            if (matches(pattern, run.values)) plan.baseline = run.setting;
        }
        check(!plan.baseline.empty(), "{}: baseline: that setting is excluded from the grid", file);
    } else {
        for (const SweepRunState& run : plan.runs) {
            bool dense = false, plain = true;
            for (const auto& [axis, label] : run.values) {
                if (axis == "model.mlp") dense = label == "dense";
                if (axis == "mechanism") plain = label == "none";
            }
            if (dense && plain) {
                plan.baseline = run.setting;
                break;
            }
        }
    }
    return plan;
}

SweepState initial_state(const SweepPlan& plan) {
    SweepState state;
    state.base = plan.base.string();
    for (const Axis& a : plan.axes) state.axes.push_back(a.key);
    state.baseline = plan.baseline;
    state.spec = plan.spec;
    state.runs = plan.runs;
    return state;
}

}  // namespace greenmoe::sweep

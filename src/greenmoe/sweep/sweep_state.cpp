// DIR/sweep.json read and written.
#include "greenmoe/sweep/sweep_state.h"

#include "greenmoe/core/error.h"
#include "greenmoe/core/json_util.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe::sweep {

namespace {

constexpr const char* kStateFile = "sweep.json";

bool known_status(const std::string& s) {
    return s == "pending" || s == "running" || s == "done" || s == "failed";
}

}  // namespace

nlohmann::json sweep_state_to_json(const SweepState& state) {
    nlohmann::json runs = nlohmann::json::array();
    for (const SweepRunState& r : state.runs) {
        nlohmann::json values = nlohmann::json::array();
        for (const auto& [axis, value] : r.values) values.push_back({axis, value});
        nlohmann::json run = {{"name", r.name},           {"setting", r.setting},
                              {"values", values},         {"seed", r.seed},
                              {"overrides", r.overrides}, {"status", r.status},
                              {"seconds", r.seconds}};
        if (!r.error.empty()) run["error"] = r.error;
        runs.push_back(std::move(run));
    }
    return {{"sweep_version", state.version}, {"base", state.base}, {"axes", state.axes},
            {"baseline", state.baseline},     {"spec", state.spec}, {"runs", std::move(runs)}};
}

SweepState sweep_state_from_json(const nlohmann::json& j, const std::string& file) {
    SweepState state;
    JsonReader top(j, file);
    top.get("sweep_version", state.version);
    check(state.version == 1, "{}: sweep_version {} is not one this greenmoe reads (1)", file,
          state.version);
    top.get("base", state.base);
    top.get("axes", state.axes);
    top.get("baseline", state.baseline);
    top.mark("spec");
    if (j.contains("spec")) state.spec = j["spec"];
    top.mark("runs");
    const auto runs = j.find("runs");
    check(runs != j.end() && runs->is_array(), "{}: expected \"runs\", an array", file);
    for (size_t i = 0; i < runs->size(); ++i) {
        const std::string where = fmt::format("{}: runs[{}]", file, i);
        JsonReader reader((*runs)[i], where);
        SweepRunState r;
        reader.get("name", r.name);
        reader.get("setting", r.setting);
        reader.get("seed", r.seed);
        reader.get("overrides", r.overrides);
        reader.get("status", r.status);
        reader.get("error", r.error);
        reader.get("seconds", r.seconds);
        std::vector<std::vector<std::string>> values;
        reader.get("values", values);
        reader.finish();
        for (const auto& pair : values) {
            check(pair.size() == 2, "{}.values: expected [axis, value] pairs", where);
            r.values.emplace_back(pair[0], pair[1]);
        }
        check(!r.name.empty() && r.name.find('/') == std::string::npos && r.name != "." &&
                  r.name != "..",
              "{}.name: expected a folder name, got \"{}\"", where, r.name);
        check(known_status(r.status),
              "{}.status: expected pending, running, done or failed, got \"{}\"", where, r.status);
        state.runs.push_back(std::move(r));
    }
    top.finish();
    return state;
}

SweepState read_sweep_state(const std::filesystem::path& dir) {
    const std::filesystem::path path = dir / kStateFile;
    check(std::filesystem::is_regular_file(path),
          "{}: not a sweep folder (it has no sweep.json; `greenmoe sweep --spec` writes one)",
          dir.string());
    const std::string text = read_file(path);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        fail("{}: not valid JSON ({})", path.string(), e.what());
    }
    return sweep_state_from_json(j, path.string());
}

void write_sweep_state(const std::filesystem::path& dir, const SweepState& state) {
    write_file_atomic(dir / kStateFile, sweep_state_to_json(state).dump(2) + "\n");
}

}  // namespace greenmoe::sweep

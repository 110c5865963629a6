// Reading a run folder for the report (see run_data.h).
#include "greenmoe/report/run_data.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "greenmoe/core/error.h"
#include "greenmoe/energy/csv_table.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/json_lines.h"

namespace greenmoe::report {
namespace {

using nlohmann::json;

// Where a record came from, for error messages: "RUN/log.jsonl:12".
struct Where {
    const std::string& file;
    int64_t line;
};

std::string type_of(const json& v) {
    return v.type_name();
}

// A number, or nullopt when absent or null (the trainer's JSON writes NaN and ∞ as null).
std::optional<double> opt_number(const json& j, const char* key, const Where& w) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    check(it->is_number(), "{}:{}: field \"{}\" must be a number, got {} {}", w.file, w.line, key,
          type_of(*it), it->dump());
    return it->get<double>();
}

double need_number(const json& j, const char* key, const Where& w) {
    check(j.contains(key), "{}:{}: {} record has no \"{}\" field", w.file, w.line,
          j.value("type", std::string("?")), key);
    const auto v = opt_number(j, key, w);
    return v ? *v : std::numeric_limits<double>::quiet_NaN();
}

std::optional<int64_t> opt_integer(const json& j, const char* key, const Where& w) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    const bool integral =
        it->is_number_integer() ||
        (it->is_number_float() && std::floor(it->get<double>()) == it->get<double>() &&
         std::abs(it->get<double>()) < 9e15);
    check(integral, "{}:{}: field \"{}\" must be an integer, got {}", w.file, w.line, key,
          it->dump());
    return it->is_number_integer() ? it->get<int64_t>() : static_cast<int64_t>(it->get<double>());
}

int64_t need_integer(const json& j, const char* key, const Where& w) {
    const auto v = opt_integer(j, key, w);
    check(v.has_value(), "{}:{}: {} record has no \"{}\" field", w.file, w.line,
          j.value("type", std::string("?")), key);
    return *v;
}

std::string opt_string(const json& j, const char* key, const Where& w) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    check(it->is_string(), "{}:{}: field \"{}\" must be a string, got {}", w.file, w.line, key,
          it->dump());
    return it->get<std::string>();
}

EnergyFields read_energy(const json& j, const Where& w) {
    EnergyFields e;
    e.energy_j = opt_number(j, "energy_j", w);
    e.co2e_g = opt_number(j, "co2e_g", w);
    e.j_per_token = opt_number(j, "j_per_token", w);
    e.pue = opt_number(j, "pue", w);
    e.source = opt_string(j, "energy_source", w);
    return e;
}

std::vector<MoeLayerLoad> read_moe(const json& j, const Where& w) {
    std::vector<MoeLayerLoad> out;
    auto it = j.find("moe");
    if (it == j.end() || it->is_null()) return out;
    check(it->is_array(), "{}:{}: field \"moe\" must be an array, got {}", w.file, w.line,
          type_of(*it));
    for (const auto& m : *it) {
        check(m.is_object(), "{}:{}: \"moe\" entries must be objects, got {}", w.file, w.line,
              m.dump());
        MoeLayerLoad l;
        l.layer =
            static_cast<int>(opt_integer(m, "layer", w).value_or(static_cast<int64_t>(out.size())));
        l.kind = opt_string(m, "kind", w);
        if (l.kind.empty()) l.kind = "mlp";
        auto load = m.find("load");
        check(load != m.end() && load->is_array(),
              "{}:{}: \"moe\" entry of layer {} needs a \"load\" array", w.file, w.line, l.layer);
        for (const auto& v : *load) {
            check(v.is_number() || v.is_null(),
                  "{}:{}: \"load\" of layer {} must hold numbers, got {}", w.file, w.line, l.layer,
                  v.dump());
            l.load.push_back(v.is_null() ? std::numeric_limits<double>::quiet_NaN()
                                         : v.get<double>());
        }
        l.dropped = opt_number(m, "dropped", w);
        l.load_cv = opt_number(m, "load_cv", w);
        l.entropy = opt_number(m, "entropy", w);
        out.push_back(std::move(l));
    }
    return out;
}

// A segment that repeats steps (resume) replaces what the earlier segment logged from there.
template <typename T>
void drop_from_step(std::vector<T>& records, int64_t step) {
    std::erase_if(records, [&](const T& r) { return r.step >= step; });
}

template <typename T>
void append_in_order(std::vector<T>& records, T record) {
    if (!records.empty() && records.back().step >= record.step)
        drop_from_step(records, record.step);
    records.push_back(std::move(record));
}

std::string snippet(const std::string& line) {
    constexpr size_t kMax = 60;
    return line.size() <= kMax ? line : line.substr(0, kMax) + "…";
}

std::optional<double> csv_number(const EmissionsRow& row, const char* column,
                                 const std::string& file, int64_t line) {
    auto it = row.fields.find(column);
    if (it == row.fields.end()) return std::nullopt;
    std::string s = it->second;
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t b = 0;
    while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    s = s.substr(b);
    if (s.empty()) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    check(end == s.c_str() + s.size() && errno == 0,
          "{}:{}: column \"{}\" must be a number, got '{}'", file, line, column, s);
    return v;
}

}  // namespace

void parse_run_log(const std::string& full_text, const std::string& file, RunData& run) {
    // A killed or failed write leaves its line cut off at the end: the run up to it is
    // still worth reading.
    const JsonLinesText lines = without_torn_last_line(full_text, file);
    if (!lines.warning.empty()) run.warnings.push_back(lines.warning);
    const std::string_view text = lines.complete;
    // The segment being read numbers its train records from 0 (version 1) or 1.
    int log_version = run.starts.empty() ? 1 : run.starts.back().log_version;
    size_t pos = 0;
    int64_t line_no = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string line(text.substr(pos, end - pos));
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (std::all_of(line.begin(), line.end(),
                        [](unsigned char c) { return std::isspace(c); })) {
            continue;
        }
        const Where w{file, line_no};
        json j;
        try {
            j = json::parse(line);
        } catch (const json::exception& e) {
            // nlohmann's message starts "[json.exception.parse_error.101] parse error at…".
            std::string why = e.what();
            const size_t cut = why.find("] ");
            if (cut != std::string::npos) why = why.substr(cut + 2);
            fail("{}:{}: malformed JSON line ({}): {}", file, line_no, why, snippet(line));
        }
        check(j.is_object() && j.contains("type") && j["type"].is_string(),
              "{}:{}: expected a JSON object with a string \"type\" field, got {}", file, line_no,
              snippet(line));
        const std::string type = j["type"].get<std::string>();
        if (type == "start") {
            StartRecord s;
            s.line = line_no;
            s.resumed_from_step = opt_integer(j, "resumed_from_step", w).value_or(0);
            s.parameters = opt_integer(j, "parameters", w).value_or(0);
            s.tokens_per_step = opt_integer(j, "tokens_per_step", w).value_or(0);
            s.grad_accum_steps = opt_integer(j, "grad_accum_steps", w).value_or(1);
            s.log_version = static_cast<int>(opt_integer(j, "log_version", w).value_or(1));
            s.init_from = opt_string(j, "init_from", w);
            log_version = s.log_version;
            if (j.contains("config")) {
                check(j["config"].is_object(), "{}:{}: field \"config\" must be an object", file,
                      line_no);
                s.config = j["config"];
            } else {
                s.config = json::object();
            }
            // A resumed segment starts from its checkpoint: later records of the old one go,
            // and the measurements made before its next update (it makes them again).
            if (s.resumed_from_step > 0) {
                drop_from_step(run.train, s.resumed_from_step + 1);
                drop_from_step(run.val, s.resumed_from_step);
                drop_from_step(run.evals, s.resumed_from_step);
                drop_from_step(run.samples, s.resumed_from_step);
            }
            if (run.done && run.done->step >= s.resumed_from_step) run.done.reset();
            run.starts.push_back(std::move(s));
        } else if (type == "train") {
            TrainRecord t;
            t.step = need_integer(j, "step", w) + (log_version < 2 ? 1 : 0);
            t.loss = need_number(j, "loss", w);
            t.lr = opt_number(j, "lr", w);
            t.grad_norm = opt_number(j, "grad_norm", w);
            t.tokens = opt_integer(j, "tokens", w);
            t.tokens_per_s = opt_number(j, "tokens_per_s", w);
            t.step_ms = opt_number(j, "step_ms", w);
            t.train_seconds = opt_number(j, "train_seconds", w);
            t.aux_loss = opt_number(j, "aux_loss", w);
            t.energy = read_energy(j, w);
            t.moe = read_moe(j, w);
            append_in_order(run.train, std::move(t));
        } else if (type == "val") {
            ValRecord v;
            v.step = need_integer(j, "step", w);
            v.val_loss = need_number(j, "val_loss", w);
            append_in_order(run.val, v);
        } else if (type == "eval") {
            EvalRecord e;
            e.step = need_integer(j, "step", w);
            e.task = opt_string(j, "task", w);
            e.items = opt_integer(j, "items", w);
            e.acc = opt_number(j, "acc", w);
            e.acc_norm = opt_number(j, "acc_norm", w);
            e.harness_acc = opt_number(j, "harness_acc", w);
            e.harness_acc_norm = opt_number(j, "harness_acc_norm", w);
            e.seconds = opt_number(j, "seconds", w);
            std::erase_if(run.evals, [&](const EvalRecord& o) {
                return o.task == e.task && o.step >= e.step;
            });
            run.evals.push_back(std::move(e));
        } else if (type == "sample") {
            SampleRecord s;
            s.step = need_integer(j, "step", w);
            s.text = opt_string(j, "text", w);
            append_in_order(run.samples, std::move(s));
        } else if (type == "done") {
            DoneRecord d;
            d.step = need_integer(j, "step", w);
            d.train_loss = opt_number(j, "train_loss", w);
            d.val_loss = opt_number(j, "val_loss", w);
            d.train_seconds = opt_number(j, "train_seconds", w);
            d.tokens = opt_integer(j, "tokens", w);
            d.energy = read_energy(j, w);
            run.done = std::move(d);
        } else {
            // Newer trainers may log record types this report does not draw yet.
            ++run.ignored_records;
        }
    }
}

std::vector<EmissionsRow> parse_emissions_csv(const std::string& text, const std::string& file) {
    const std::vector<CsvRecord> records = parse_csv_records(text, file);
    std::vector<EmissionsRow> rows;
    if (records.empty()) return rows;
    const auto& header = records.front().fields;
    for (size_t r = 1; r < records.size(); ++r) {
        const auto where = static_cast<int64_t>(records[r].line);
        const auto& values = records[r].fields;
        check(values.size() == header.size(), "{}:{}: {} fields, but the header has {}", file,
              where, values.size(), header.size());
        EmissionsRow row;
        for (size_t k = 0; k < header.size(); ++k) row.fields[header[k]] = values[k];
        row.duration_s = csv_number(row, "duration", file, where);
        row.emissions_kg = csv_number(row, "emissions", file, where);
        row.energy_kwh = csv_number(row, "energy_consumed", file, where);
        rows.push_back(std::move(row));
    }
    return rows;
}

bool add_eval_result(RunData& run, const json& result, const std::string& file) {
    const Where w{file, 1};
    check(result.is_object(), "{}: expected the JSON object `greenmoe eval --json` writes", file);
    if (opt_string(result, "task", w) != "hellaswag") return false;
    EvalRecord e;
    e.task = "hellaswag";
    e.file = file;
    e.items = opt_integer(result, "items", w);
    e.acc = opt_number(result, "acc", w);
    e.acc_norm = opt_number(result, "acc_norm", w);
    e.harness_acc = opt_number(result, "harness_acc", w);
    e.harness_acc_norm = opt_number(result, "harness_acc_norm", w);
    e.seconds = opt_number(result, "seconds", w);
    const auto step = opt_integer(result, "step", w);
    e.step = step ? *step : run_totals(run).last_step.value_or(0);
    std::erase_if(run.evals,
                  [&](const EvalRecord& o) { return o.task == e.task && o.step == e.step; });
    run.evals.push_back(std::move(e));
    std::stable_sort(run.evals.begin(), run.evals.end(),
                     [](const EvalRecord& a, const EvalRecord& b) { return a.step < b.step; });
    return true;
}

bool eval_result_belongs_to(const RunData& run, const json& result) {
    namespace fs = std::filesystem;
    if (!result.is_object()) return false;
    std::error_code ec;
    fs::path folder = fs::weakly_canonical(fs::absolute(run.folder, ec), ec);
    if (folder.filename().empty()) folder = folder.parent_path();  // "runs/a/"
    if (folder.empty()) return false;
    for (const char* key : {"weights", "model_absolute"}) {
        const auto it = result.find(key);
        if (it == result.end() || !it->is_string()) continue;
        const fs::path model = fs::weakly_canonical(fs::path(it->get<std::string>()), ec);
        if (model.empty()) continue;
        // The run folder itself, or a path inside it (a checkpoint, its weights).
        const auto [f, m] = std::mismatch(folder.begin(), folder.end(), model.begin(), model.end());
        if (f == folder.end()) return true;
    }
    return false;
}

RunData read_run(const std::filesystem::path& folder) {
    std::error_code ec;
    check(std::filesystem::is_directory(folder, ec), "run folder '{}' does not exist",
          folder.string());
    const auto log = folder / "log.jsonl";
    check(std::filesystem::is_regular_file(log, ec),
          "{}: no log.jsonl in this folder (expected the --out folder of greenmoe train)",
          folder.string());
    RunData run;
    run.folder = folder;
    // "runs/a/" and "runs/a/." both name the run "a".
    auto clean = folder.lexically_normal();
    if (clean.filename().empty()) clean = clean.parent_path();
    run.name = clean.filename().string();
    if (run.name.empty() || run.name == "." || run.name == "..")
        run.name = std::filesystem::absolute(folder, ec).lexically_normal().filename().string();
    if (run.name.empty()) run.name = folder.string();
    parse_run_log(read_file(log), log.string(), run);
    check(!run.starts.empty() || !run.train.empty(),
          "{}: no start or train records (an empty or foreign log?)", log.string());
    const auto csv = folder / "emissions.csv";
    if (std::filesystem::is_regular_file(csv, ec))
        run.emissions = parse_emissions_csv(read_file(csv), csv.string());
    const auto parent = folder / "parent.json";
    if (std::filesystem::is_regular_file(parent, ec)) {
        json p = json::parse(read_file(parent), nullptr, false);
        if (p.is_object())
            run.parent = std::move(p);
        else
            run.warnings.push_back(parent.string() + ": not a JSON object, left out");
    }
    // `greenmoe eval --json RUN/eval….json`: results kept beside the run.
    std::vector<std::filesystem::path> evals;
    for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
        const std::string name = entry.path().filename().string();
        if (entry.is_regular_file(ec) && name.starts_with("eval") && name.ends_with(".json"))
            evals.push_back(entry.path());
    }
    std::sort(evals.begin(), evals.end());
    for (const auto& file : evals) {
        const json result = json::parse(read_file(file), nullptr, false);
        if (result.is_discarded()) {
            run.warnings.push_back(file.string() + ": not JSON, left out");
            continue;
        }
        add_eval_result(run, result, file.string());
    }
    return run;
}

bool energy_source_is_measured(const std::string& source) {
    std::string s;
    for (char c : source) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (s.empty() || s == "none" || s == "unknown") return false;
    return s.find("estimate") == std::string::npos && s.find("tdp") == std::string::npos;
}

RunTotals run_totals(const RunData& run) {
    RunTotals t;
    const TrainRecord* last = run.train.empty() ? nullptr : &run.train.back();
    for (auto it = run.train.rbegin(); it != run.train.rend(); ++it) {
        if (!t.energy_j && it->energy.energy_j) t.energy_j = it->energy.energy_j;
        if (!t.co2e_g && it->energy.co2e_g) t.co2e_g = it->energy.co2e_g;
        if (!t.pue && it->energy.pue) t.pue = it->energy.pue;
        if (!t.j_per_token && it->energy.j_per_token) t.j_per_token = it->energy.j_per_token;
        if (t.energy_source.empty()) t.energy_source = it->energy.source;
        if (t.energy_j && t.co2e_g && t.pue && !t.energy_source.empty()) break;
    }
    if (run.done) {
        const DoneRecord& d = *run.done;
        if (d.energy.energy_j) t.energy_j = d.energy.energy_j;
        if (d.energy.co2e_g) t.co2e_g = d.energy.co2e_g;
        if (d.energy.pue) t.pue = d.energy.pue;
        if (d.energy.j_per_token) t.j_per_token = d.energy.j_per_token;
        if (!d.energy.source.empty()) t.energy_source = d.energy.source;
        t.final_train_loss = d.train_loss;
        t.final_val_loss = d.val_loss;
        t.train_seconds = d.train_seconds;
        t.tokens = d.tokens;
        t.last_step = d.step;
    }
    if (!t.final_train_loss && last) t.final_train_loss = last->loss;
    if (!t.final_val_loss && !run.val.empty()) t.final_val_loss = run.val.back().val_loss;
    if (!t.train_seconds && last) t.train_seconds = last->train_seconds;
    if (!t.tokens && last) t.tokens = last->tokens;
    if (!t.last_step && last) t.last_step = last->step;
    t.measured = (t.energy_j || t.co2e_g) && energy_source_is_measured(t.energy_source);
    if (!t.energy_j && !t.co2e_g && !run.emissions.empty()) {
        double kwh = 0, kg = 0;
        bool have_kwh = false, have_kg = false;
        for (const auto& row : run.emissions) {
            if (row.energy_kwh) {
                kwh += *row.energy_kwh;
                have_kwh = true;
            }
            if (row.emissions_kg) {
                kg += *row.emissions_kg;
                have_kg = true;
            }
        }
        if (have_kwh) t.energy_j = kwh * 3.6e6;
        if (have_kg) t.co2e_g = kg * 1e3;
        if (have_kwh || have_kg) t.energy_source = "emissions.csv";
        t.measured = false;
    }
    // emissions.csv's energy_consumed includes the PUE too (CodeCarbon's definition): the
    // segments' effective PUE when the log does not say.
    if (!t.pue) {
        double kwh = 0, hardware_kwh = 0;
        for (const auto& row : run.emissions) {
            const auto it = row.fields.find("pue");
            if (!row.energy_kwh || it == row.fields.end()) continue;
            char* end = nullptr;
            const double pue = std::strtod(it->second.c_str(), &end);
            if (end == it->second.c_str() || !(pue >= 1.0) || !std::isfinite(pue)) continue;
            kwh += *row.energy_kwh;
            hardware_kwh += *row.energy_kwh / pue;
        }
        if (hardware_kwh > 0) t.pue = kwh / hardware_kwh;
    }
    if (!t.j_per_token && t.energy_j && t.tokens && *t.tokens > 0)
        t.j_per_token = *t.energy_j / static_cast<double>(*t.tokens);
    if (run.parent) {
        const auto it = run.parent->find("co2e_g");
        if (it != run.parent->end() && it->is_number()) t.parent_co2e_g = it->get<double>();
    }
    for (auto it = run.evals.rbegin(); it != run.evals.rend(); ++it) {
        if ((it->task == "hellaswag" || it->task.empty()) && it->acc_norm) {
            t.last_eval = *it;
            break;
        }
    }
    return t;
}

}  // namespace greenmoe::report

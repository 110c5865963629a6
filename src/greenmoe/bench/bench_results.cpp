// Bench rows: JSON, CSV, reductions and reading bench.jsonl (see bench_results.h).
#include "greenmoe/bench/bench_results.h"

#include <cmath>
#include <filesystem>

#include "greenmoe/core/error.h"
#include "greenmoe/energy/emissions_csv.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/json_lines.h"

namespace greenmoe {
namespace {

using Json = nlohmann::json;
// Rows keep their fields in the order written below (CSV columns too): what, then how fast,
// then how much energy, then size.
using Ordered = nlohmann::ordered_json;

// NaN and infinities have no JSON spelling: null says "not a number" plainly.
Ordered number(double v) {
    return std::isfinite(v) ? Ordered(v) : Ordered(nullptr);
}
Ordered optional_number(const std::optional<double>& v) {
    return v ? number(*v) : Ordered(nullptr);
}

double get_double(const Json& j, const char* key, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) return std::nan("");
    check(j[key].is_number(), "{}: field '{}' should be a number", where, key);
    return j[key].get<double>();
}
std::optional<double> get_optional(const Json& j, const char* key, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    return get_double(j, key, where);
}
int64_t get_int(const Json& j, const char* key, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) return 0;
    check(j[key].is_number_integer(), "{}: field '{}' should be a whole number", where, key);
    return j[key].get<int64_t>();
}
std::string get_string(const Json& j, const char* key, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) return {};
    check(j[key].is_string(), "{}: field '{}' should be a string", where, key);
    return j[key].get<std::string>();
}
bool get_bool(const Json& j, const char* key, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) return false;
    check(j[key].is_boolean(), "{}: field '{}' should be true or false", where, key);
    return j[key].get<bool>();
}

std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::string csv_scalar(const Ordered& v) {
    if (v.is_null()) return "";
    if (v.is_string()) return csv_field(v.get<std::string>());
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    if (v.is_number()) return python_float(v.get<double>());
    return csv_field(v.dump());
}

}  // namespace

const std::vector<std::string>& reduction_figures() {
    static const std::vector<std::string> names = {"ttft_s",
                                                   "itl_mean_s",
                                                   "run_s",
                                                   "prefill_tokens_per_s",
                                                   "decode_tokens_per_s",
                                                   "energy_j",
                                                   "j_per_token",
                                                   "j_per_response",
                                                   "average_power_w",
                                                   "peak_rss_bytes",
                                                   "parameters",
                                                   "active_parameters"};
    return names;
}

std::optional<double> bench_figure(const BenchRow& r, const std::string& name) {
    if (name == "ttft_s") return r.ttft_s;
    if (name == "itl_mean_s") return r.itl_mean_s;
    if (name == "run_s") return r.run_s;
    if (name == "prefill_tokens_per_s") return r.prefill_tokens_per_s;
    if (name == "decode_tokens_per_s") return r.decode_tokens_per_s;
    if (name == "energy_j") return r.energy_j;
    if (name == "j_per_token") return r.j_per_token;
    if (name == "j_per_response") return r.j_per_response;
    if (name == "average_power_w") return r.average_power_w;
    if (name == "peak_rss_bytes") return r.peak_rss_bytes;
    if (name == "parameters") return double(r.parameters);
    if (name == "active_parameters") return double(r.active_parameters);
    return std::nullopt;
}

void compute_reductions(std::vector<BenchRow>& rows) {
    for (BenchRow& row : rows) {
        row.reduction_percent.clear();
        if (!row.ok) continue;
        const BenchRow* base = nullptr;
        for (const BenchRow& b : rows) {
            if (b.baseline && b.ok && b.batch == row.batch) base = &b;
        }
        if (base == nullptr) continue;
        for (const std::string& name : reduction_figures()) {
            const double b = *bench_figure(*base, name), v = *bench_figure(row, name);
            // A zero baseline (no energy measured, --no-energy) has no relative change.
            if (b == 0.0 || !std::isfinite(b) || !std::isfinite(v)) continue;
            row.reduction_percent[name] = 100.0 * (b - v) / b;
        }
    }
}

nlohmann::ordered_json bench_row_json(const BenchRow& r) {
    Ordered j;
    j["model"] = r.model;
    j["model_absolute"] = r.model_absolute;
    j["baseline"] = r.baseline;
    j["batch"] = r.batch;
    j["status"] = r.ok ? "ok" : "failed";
    j["error"] = r.ok ? Ordered(nullptr) : Ordered(r.error);
    j["prompt_tokens"] = r.prompt_tokens;
    j["new_tokens"] = r.new_tokens;
    j["warmup"] = r.warmup;
    j["repeats"] = r.repeats;
    if (!r.ok) return j;
    j["prompt_tokens_per_run"] = r.prompt_tokens_per_run;
    j["generated_tokens_per_run"] = r.generated_tokens_per_run;
    j["ttft_s"] = number(r.ttft_s);
    j["itl_mean_s"] = number(r.itl_mean_s);
    j["itl_p50_s"] = number(r.itl_p50_s);
    j["itl_p90_s"] = number(r.itl_p90_s);
    j["run_s"] = number(r.run_s);
    j["prefill_tokens_per_s"] = number(r.prefill_tokens_per_s);
    j["decode_tokens_per_s"] = number(r.decode_tokens_per_s);
    // Without a monitor (--no-energy) nothing was measured: null, not 0.
    const bool metered = !r.energy_source.empty();
    auto energy = [metered](double v) { return metered ? number(v) : Ordered(nullptr); };
    j["window_s"] = energy(r.window_s);
    j["energy_j"] = energy(r.energy_j);
    j["j_per_token"] = energy(r.j_per_token);
    j["j_per_response"] = energy(r.j_per_response);
    j["average_power_w"] = energy(r.average_power_w);
    j["co2e_g_per_1000_responses"] = energy(r.co2e_g_per_1000_responses);
    j["energy_measured"] = r.energy_measured;
    j["energy_source"] = r.energy_source;
    j["location"] = r.location;
    j["pue"] = energy(r.pue);
    j["idle_power_w"] = optional_number(r.idle_power_w);
    j["cv_run_s"] = optional_number(r.cv_run_s);
    j["cv_energy_j"] = optional_number(r.cv_energy_j);
    j["cv_threshold"] = number(r.cv_threshold);
    j["stable"] = r.stable ? Ordered(*r.stable) : Ordered(nullptr);
    j["peak_rss_bytes"] = number(r.peak_rss_bytes);
    j["peak_rss_scope"] = r.peak_rss_scope;
    j["parameters"] = r.parameters;
    j["active_parameters"] = r.active_parameters;
    j["experts_per_layer"] = r.experts_per_layer;
    j["top_k"] = r.top_k;
    j["experts_pruned_percent"] = optional_number(r.experts_pruned_percent);
    j["expert_params_pruned_percent"] = optional_number(r.expert_params_pruned_percent);
    j["criterion"] = r.criterion.empty() ? Ordered(nullptr) : Ordered(r.criterion);
    Ordered reductions = Ordered::object();
    for (const auto& [name, v] : r.reduction_percent) reductions[name] = number(v);
    j["reduction_percent"] = reductions;
    return j;
}

BenchRow bench_row_from_json(const nlohmann::json& j, const std::string& where) {
    check(j.is_object(), "{}: not a JSON object (a line of greenmoe bench's bench.jsonl)", where);
    BenchRow r;
    r.model = get_string(j, "model", where);
    check(!r.model.empty(), "{}: no 'model' field (not a greenmoe bench row)", where);
    r.model_absolute = get_string(j, "model_absolute", where);
    r.baseline = get_bool(j, "baseline", where);
    r.batch = int(get_int(j, "batch", where));
    const std::string status = get_string(j, "status", where);
    check(status == "ok" || status == "failed", "{}: status '{}' should be ok or failed", where,
          status);
    r.ok = status == "ok";
    r.error = get_string(j, "error", where);
    r.prompt_tokens = int(get_int(j, "prompt_tokens", where));
    r.new_tokens = int(get_int(j, "new_tokens", where));
    r.warmup = int(get_int(j, "warmup", where));
    r.repeats = int(get_int(j, "repeats", where));
    if (!r.ok) return r;
    r.prompt_tokens_per_run = get_int(j, "prompt_tokens_per_run", where);
    r.generated_tokens_per_run = get_int(j, "generated_tokens_per_run", where);
    r.ttft_s = get_double(j, "ttft_s", where);
    r.itl_mean_s = get_double(j, "itl_mean_s", where);
    r.itl_p50_s = get_double(j, "itl_p50_s", where);
    r.itl_p90_s = get_double(j, "itl_p90_s", where);
    r.run_s = get_double(j, "run_s", where);
    r.prefill_tokens_per_s = get_double(j, "prefill_tokens_per_s", where);
    r.decode_tokens_per_s = get_double(j, "decode_tokens_per_s", where);
    r.window_s = get_double(j, "window_s", where);
    r.energy_j = get_double(j, "energy_j", where);
    r.j_per_token = get_double(j, "j_per_token", where);
    r.j_per_response = get_double(j, "j_per_response", where);
    r.average_power_w = get_double(j, "average_power_w", where);
    r.co2e_g_per_1000_responses = get_double(j, "co2e_g_per_1000_responses", where);
    r.energy_measured = get_bool(j, "energy_measured", where);
    r.energy_source = get_string(j, "energy_source", where);
    r.location = get_string(j, "location", where);
    r.pue = get_double(j, "pue", where);
    r.idle_power_w = get_optional(j, "idle_power_w", where);
    r.cv_run_s = get_optional(j, "cv_run_s", where);
    r.cv_energy_j = get_optional(j, "cv_energy_j", where);
    r.cv_threshold = get_double(j, "cv_threshold", where);
    if (j.contains("stable") && !j["stable"].is_null()) r.stable = get_bool(j, "stable", where);
    r.peak_rss_bytes = get_double(j, "peak_rss_bytes", where);
    r.peak_rss_scope = get_string(j, "peak_rss_scope", where);
    r.parameters = get_int(j, "parameters", where);
    r.active_parameters = get_int(j, "active_parameters", where);
    if (j.contains("experts_per_layer") && j["experts_per_layer"].is_array()) {
        for (const auto& e : j["experts_per_layer"]) {
            check(e.is_number_integer(), "{}: experts_per_layer should hold whole numbers", where);
            r.experts_per_layer.push_back(e.get<int>());
        }
    }
    r.top_k = int(get_int(j, "top_k", where));
    r.experts_pruned_percent = get_optional(j, "experts_pruned_percent", where);
    r.expert_params_pruned_percent = get_optional(j, "expert_params_pruned_percent", where);
    r.criterion = get_string(j, "criterion", where);
    if (j.contains("reduction_percent") && j["reduction_percent"].is_object()) {
        for (const auto& [name, v] : j["reduction_percent"].items()) {
            if (v.is_number()) r.reduction_percent[name] = v.get<double>();
        }
    }
    return r;
}

std::string bench_csv(const std::vector<BenchRow>& rows) {
    // Every column any row has, in the JSON's order: a failed row has fewer fields.
    const Ordered full = bench_row_json(BenchRow{});
    std::vector<std::string> columns;
    for (const auto& [key, value] : full.items()) {
        if (key != "reduction_percent") columns.push_back(key);
    }
    std::string out;
    for (const auto& c : columns) {
        if (!out.empty()) out += ",";
        out += c;
    }
    for (const auto& name : reduction_figures()) {
        out += ",reduction_";
        out += name;
        out += "_percent";
    }
    out += "\n";
    for (const BenchRow& row : rows) {
        const Ordered j = bench_row_json(row);
        std::string line;
        for (size_t c = 0; c < columns.size(); ++c) {
            if (c > 0) line += ",";
            if (!j.contains(columns[c])) continue;
            const Ordered& v = j[columns[c]];
            if (columns[c] == "experts_per_layer") {
                std::string joined;
                for (const auto& e : v) {
                    if (!joined.empty()) joined += ";";
                    joined += e.dump();
                }
                line += joined;
            } else {
                line += csv_scalar(v);
            }
        }
        for (const auto& name : reduction_figures()) {
            line += ",";
            const auto it = row.reduction_percent.find(name);
            if (it != row.reduction_percent.end()) line += python_float(it->second);
        }
        out += line + "\n";
    }
    return out;
}

std::vector<BenchRow> read_bench_rows(const std::filesystem::path& path) {
    const std::filesystem::path file =
        std::filesystem::is_directory(path) ? path / "bench.jsonl" : path;
    const std::string text = read_file(file);
    const JsonLinesText lines = without_torn_last_line(text, file.string());
    std::vector<BenchRow> rows;
    size_t start = 0, line_number = 0;
    const std::string_view all = lines.complete;
    while (start < all.size()) {
        size_t end = all.find('\n', start);
        if (end == std::string_view::npos) end = all.size();
        ++line_number;
        const std::string_view line = all.substr(start, end - start);
        start = end + 1;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        const std::string where = fmt::format("{} line {}", file.string(), line_number);
        const Json j = Json::parse(line, nullptr, false);
        check(!j.is_discarded(), "{}: not valid JSON", where);
        rows.push_back(bench_row_from_json(j, where));
    }
    check(!rows.empty(), "{}: no bench rows (greenmoe bench writes one per model and batch size)",
          file.string());
    return rows;
}

}  // namespace greenmoe

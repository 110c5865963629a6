// The pruning study: prune with every criterion at every budget, evaluate each model the same
// way, resume where a run stopped, tabulate and plot (see prune_study.h).
#include "greenmoe/moeits/prune_study.h"

#include <fmt/format.h>
#include <cmath>
#include <cstdio>

#include "greenmoe/bench/inference_bench.h"
#include "greenmoe/core/error.h"
#include "greenmoe/eval/harness_tasks.h"
#include "greenmoe/eval/language_model.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/moeits/simplify.h"
#include "greenmoe/report/svg_plot.h"

namespace greenmoe::moeits {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr const char* kResultFormat = "greenmoe-prune-study-cell/1";

void say(const PruneStudyOptions& o, const std::string& line) {
    if (o.log) {
        o.log(line);
        return;
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
}

std::string cell_name(const std::string& criterion, double reduce) {
    return fmt::format("{}-reduce{}", criterion, reduce);
}

// What a finished cell must have been computed with to be reused.
Json cell_key(const PruneStudyOptions& o, const std::string& criterion, double reduce) {
    Json key = {{"format", kResultFormat},
                {"model", fs::absolute(o.model).lexically_normal().string()},
                {"criterion", criterion},
                {"reduce_percent", reduce},
                {"tasks", o.tasks},
                {"num_fewshot", o.task_options.num_fewshot},
                {"limit", o.task_options.limit},
                {"benchmark", o.benchmark ? Json{{"prompt_tokens", o.bench_prompt_tokens},
                                                 {"new_tokens", o.bench_new_tokens},
                                                 {"warmup", o.bench_warmup},
                                                 {"repeats", o.bench_repeats}}
                                          : Json(nullptr)}};
    if (criterion == "random") key["seed"] = o.seed;
    if (criterion == "frequency" || criterion == "ean" || criterion == "reap" ||
        criterion == "naee") {
        key["calibration"] = {{"data", o.calibration_data},
                              {"tokens", o.calibration_tokens},
                              {"sequence_length", o.calibration_sequence_length}};
    }
    return key;
}

// The harness's accuracy of each task ("acc,none").
Json task_scores(const Json& results, const std::vector<std::string>& tasks) {
    Json scores = Json::object();
    for (const auto& t : tasks) {
        const Json& r = results.at("results").at(t);
        scores[t] = r.contains("acc,none") ? r.at("acc,none") : Json(nullptr);
    }
    return scores;
}

void check_options(const PruneStudyOptions& o) {
    usage_check(!o.model.empty(), "--model: no model given");
    usage_check(!o.out.empty(), "--out: no study folder given");
    usage_check(!o.criteria.empty(), "--criteria: give at least one criterion");
    usage_check(!o.reduce_percents.empty(), "--reduce: give at least one budget");
    for (const double r : o.reduce_percents) {
        usage_check(r > 0.0 && r < 100.0, "--reduce: {} is not a percentage in (0, 100)", r);
    }
    usage_check(!o.tasks.empty(), "--tasks: give at least one task");
    for (const Criterion c : o.criteria) {
        if (make_criterion(c)->needs_calibration()) {
            usage_check(!o.calibration_data.empty(),
                        "--criteria {} needs --calibration-data (token shards for the model)",
                        criterion_name(c));
        }
    }
}

// Prunes (unless an earlier run left the pruned model complete) and returns the share of
// expert parameters removed.
double prune_cell(const PruneStudyOptions& o, Criterion criterion, double reduce,
                  const fs::path& model_dir) {
    const fs::path summary = model_dir / "summary.json";
    if (fs::is_regular_file(summary)) {
        const Json s = Json::parse(read_file(summary));
        return s.at("parameters").at("expert_reduction_percent").get<double>();
    }
    // Written atomically, so a folder without its summary is only ever our own leftover.
    if (fs::exists(model_dir)) fs::remove_all(model_dir);
    SimplifyOptions s;
    s.model = o.model;
    s.out = model_dir;
    s.reduce_percent = reduce;
    s.criterion = criterion;
    s.seed = o.seed;
    s.calibration_data = o.calibration_data;
    s.calibration_tokens = o.calibration_tokens;
    s.calibration_sequence_length = o.calibration_sequence_length;
    // One similarity cache for the whole study: the NMI rule sets every criterion's count.
    s.nmi_cache = o.out / "nmi";
    s.show_progress = o.show_progress;
    s.log = [&](const std::string& line) { say(o, fmt::format("  {}", line)); };
    const SimplifyResult r = simplify_model(s);
    return r.summary.at("parameters").at("expert_reduction_percent").get<double>();
}

PruneStudyCell evaluate_cell(const PruneStudyOptions& o, const fs::path& model_dir) {
    PruneStudyCell cell;
    const std::unique_ptr<LanguageModel> lm = open_language_model(model_dir);
    HarnessRunOptions h;
    h.tasks = o.task_options;
    h.progress = o.show_progress;
    cell.scores = task_scores(run_harness_tasks(*lm, o.tasks, h), o.tasks);
    cell.benchmark = measure_inference(*lm, o);
    return cell;
}

Json cell_json(const PruneStudyCell& c, const Json& key) {
    return {{"key", key},
            {"criterion", c.criterion},
            {"reduce_percent", c.reduce_percent},
            {"expert_reduction_percent", c.expert_reduction_percent},
            {"scores", c.scores},
            {"benchmark", c.benchmark}};
}

std::optional<PruneStudyCell> finished_cell(const fs::path& result, const Json& key) {
    if (!fs::is_regular_file(result)) return std::nullopt;
    const Json j = Json::parse(read_file(result), nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("key", Json()) != key) return std::nullopt;
    PruneStudyCell c;
    c.criterion = j.at("criterion").get<std::string>();
    c.reduce_percent = j.at("reduce_percent").get<double>();
    c.expert_reduction_percent = j.at("expert_reduction_percent").get<double>();
    c.scores = j.at("scores");
    c.benchmark = j.at("benchmark");
    c.reused = true;
    return c;
}

std::string format_score(const Json& v) {
    return v.is_number() ? fmt::format("{:.4f}", v.get<double>()) : "";
}

// study.csv and study.md: one row per model, one column per task (accuracy).
void write_table(const PruneStudyOptions& o, const std::vector<PruneStudyCell>& cells,
                 PruneStudyResult& result) {
    std::string csv = "criterion,reduce_percent,expert_reduction_percent";
    std::string md = "| criterion | budget (% expert params) | removed (%) |";
    std::string rule = "|---|---:|---:|";
    for (const auto& t : o.tasks) {
        csv += fmt::format(",{}", t);
        md += fmt::format(" {} |", t);
        rule += "---:|";
    }
    csv += ",ttft_s,decode_tokens_per_s\n";
    md += fmt::format(" TTFT (s) | decode tokens/s |\n{}---:|---:|\n", rule);
    for (const auto& c : cells) {
        csv +=
            fmt::format("{},{},{:.2f}", c.criterion, c.reduce_percent, c.expert_reduction_percent);
        md += fmt::format("| {} | {} | {:.1f} |", c.criterion, c.reduce_percent,
                          c.expert_reduction_percent);
        for (const auto& t : o.tasks) {
            const std::string score = format_score(c.scores.value(t, Json()));
            csv += fmt::format(",{}", score);
            md += fmt::format(" {} |", score);
        }
        const auto figure = [&](const char* name) {
            return c.benchmark.is_object()
                       ? fmt::format("{:.4g}", c.benchmark.at(name).get<double>())
                       : std::string();
        };
        csv += fmt::format(",{},{}\n", figure("ttft_s"), figure("decode_tokens_per_s"));
        md += fmt::format(" {} | {} |\n", figure("ttft_s"), figure("decode_tokens_per_s"));
    }
    result.table = o.out / "study.csv";
    write_file_atomic(result.table, csv);
    write_file_atomic(o.out / "study.md", md);
}

// Mean accuracy over the tasks against the share of expert parameters removed, one line per
// criterion, each starting at the unpruned model.
void write_plot(const PruneStudyOptions& o, const std::vector<PruneStudyCell>& cells,
                PruneStudyResult& result) {
    const auto mean_score = [&](const PruneStudyCell& c) {
        double sum = 0.0;
        int n = 0;
        for (const auto& t : o.tasks) {
            const Json v = c.scores.value(t, Json());
            if (v.is_number()) {
                sum += v.get<double>();
                ++n;
            }
        }
        return n > 0 ? sum / n : std::nan("");
    };
    report::LinePlot plot;
    plot.id = "accuracy-vs-pruning";
    plot.title = "Mean accuracy against expert parameters removed";
    plot.x.label = "expert parameters removed (%)";
    plot.y.label = "mean accuracy";
    plot.x_name = "removed %";
    plot.y_name = "accuracy";
    const PruneStudyCell* original = nullptr;
    for (const auto& c : cells) {
        if (c.criterion == "none") original = &c;
    }
    for (const Criterion k : o.criteria) {
        report::Series s;
        s.name = criterion_name(k);
        if (original != nullptr) {
            s.x.push_back(0.0);
            s.y.push_back(mean_score(*original));
        }
        for (const auto& c : cells) {
            if (c.criterion != s.name) continue;
            s.x.push_back(c.expert_reduction_percent);
            s.y.push_back(mean_score(c));
        }
        plot.series.push_back(std::move(s));
    }
    result.plot = o.out / "accuracy_vs_pruning.svg";
    write_file_atomic(result.plot, report::render_line_plot(plot));
}

}  // namespace

Json measure_inference(const LanguageModel& model, const PruneStudyOptions& o) {
    if (!o.benchmark) return nullptr;
    BenchProtocol protocol;
    protocol.prompt_tokens = o.bench_prompt_tokens;
    protocol.new_tokens = o.bench_new_tokens;
    protocol.warmup = o.bench_warmup;
    protocol.repeats = o.bench_repeats;
    const std::vector<BenchRow> rows = bench_language_model(model, protocol, BenchMeters{});
    check(!rows.empty() && rows.front().ok, "inference benchmark of {}: {}", model.name(),
          rows.empty() ? std::string("no result") : rows.front().error);
    const BenchRow& r = rows.front();
    return {{"prompt_tokens", r.prompt_tokens},
            {"new_tokens", r.new_tokens},
            {"repeats", r.repeats},
            {"ttft_s", r.ttft_s},
            {"itl_mean_s", r.itl_mean_s},
            {"prefill_tokens_per_s", r.prefill_tokens_per_s},
            {"decode_tokens_per_s", r.decode_tokens_per_s},
            {"parameters", r.parameters},
            {"active_parameters", r.active_parameters}};
}

PruneStudyResult run_prune_study(const PruneStudyOptions& o) {
    check_options(o);
    fs::create_directories(o.out);
    PruneStudyResult result;
    std::vector<PruneStudyCell> cells;
    // The unpruned model first: every criterion's line starts there.
    struct Job {
        std::string criterion;
        double reduce;
        std::optional<Criterion> kind;
    };
    std::vector<Job> jobs = {{"none", 0.0, std::nullopt}};
    for (const Criterion c : o.criteria) {
        for (const double r : o.reduce_percents) jobs.push_back({criterion_name(c), r, c});
    }
    for (const Job& job : jobs) {
        const fs::path dir = o.out / (job.kind ? cell_name(job.criterion, job.reduce) : "original");
        const Json key = cell_key(o, job.criterion, job.reduce);
        if (auto done = finished_cell(dir / "result.json", key)) {
            say(o, fmt::format("{}: finished earlier, reused", dir.filename().string()));
            cells.push_back(std::move(*done));
            ++result.reused;
            continue;
        }
        if (o.stop_after_cells > 0 && result.computed >= o.stop_after_cells) {
            result.stopped = true;
            break;
        }
        say(o, fmt::format("{}: {}", dir.filename().string(),
                           job.kind ? "pruning and evaluating" : "evaluating the unpruned model"));
        fs::create_directories(dir);
        double removed = 0.0;
        fs::path model_dir = o.model;
        if (job.kind) {
            model_dir = dir / "model";
            removed = prune_cell(o, *job.kind, job.reduce, model_dir);
        }
        PruneStudyCell cell = evaluate_cell(o, model_dir);
        cell.criterion = job.criterion;
        cell.reduce_percent = job.reduce;
        cell.expert_reduction_percent = removed;
        // The result last, atomically: a cell counts as finished only once it is written.
        write_file_atomic(dir / "result.json", cell_json(cell, key).dump(2) + "\n");
        cells.push_back(std::move(cell));
        ++result.computed;
    }
    write_table(o, cells, result);
    write_plot(o, cells, result);
    result.cells = std::move(cells);
    say(o, fmt::format("prune-study: {} computed, {} reused; table {}, plot {}", result.computed,
                       result.reused, result.table.string(), result.plot.string()));
    return result;
}

}  // namespace greenmoe::moeits

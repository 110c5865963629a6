// The models view of report.html (see models_view.h).
#include "greenmoe/report/models_view.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/report/html_report.h"
#include "greenmoe/report/pareto.h"
#include "greenmoe/report/svg_plot.h"

namespace greenmoe::report {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kFrontColor = "#d1495b";
constexpr const char* kOtherColor = "#8d99ae";

std::string normal_path(const std::string& path) {
    std::string p = fs::path(path).lexically_normal().string();
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

std::string model_label(const std::string& model) {
    const std::string p = normal_path(model);
    const std::string name = fs::path(p).filename().string();
    return name.empty() ? p : name;
}

// The eval*.json files in a model's folder, sorted for a stable order.
std::vector<fs::path> evals_beside(const std::string& model) {
    std::vector<fs::path> files;
    std::error_code ec;
    if (!fs::is_directory(model, ec)) return files;
    for (const auto& entry : fs::directory_iterator(model, ec)) {
        const std::string name = entry.path().filename().string();
        if (entry.is_regular_file() && name.rfind("eval", 0) == 0 && name.size() > 5 &&
            name.substr(name.size() - 5) == ".json")
            files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::string fixed(double v, int decimals) {
    return std::isfinite(v) ? fmt::format("{:.{}f}", v, decimals) : "–";
}
std::string sig(double v) {
    return std::isfinite(v) ? fmt::format("{:.3g}", v) : "–";
}
std::string gib(double bytes) {
    return fixed(bytes / (1024.0 * 1024.0 * 1024.0), 2);
}

std::string figure(const std::string& svg, const std::string& caption_html) {
    std::string out = "<figure>";
    out += svg;
    out += "<figcaption>";
    out += caption_html;
    out += "</figcaption></figure>\n";
    return out;
}

// Marks the front's points (data-front="1", the front colour) and joins them, in x order, by
// a dashed line drawn under the markers. The points are found by their unique labels.
std::string mark_front(std::string svg, const std::vector<std::string>& labels) {
    struct At {
        double x, y;
    };
    std::vector<At> at;
    for (const auto& label : labels) {
        const std::string key = fmt::format("data-label=\"{}\"", escape_xml(label));
        const size_t attr = svg.find(key);
        if (attr == std::string::npos) continue;
        const size_t circle = svg.rfind("<circle class=\"pt\"", attr);
        auto number_after = [&](const std::string& name) {
            const size_t p = svg.find(fmt::format("{}=\"", name), circle);
            return std::atof(svg.c_str() + p + name.size() + 2);
        };
        at.push_back({number_after("cx"), number_after("cy")});
        svg.insert(attr, "data-front=\"1\" ");
    }
    if (at.empty()) return svg;
    std::sort(at.begin(), at.end(), [](const At& a, const At& b) { return a.x < b.x; });
    std::string points;
    for (const At& p : at) points += fmt::format("{:.1f},{:.1f} ", p.x, p.y);
    points.pop_back();
    const std::string line = fmt::format(
        "<polyline class=\"front\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" "
        "stroke-dasharray=\"5 3\"/>\n",
        points, kFrontColor);
    const size_t first = svg.find("<circle class=\"pt\"");
    svg.insert(first == std::string::npos ? svg.rfind("</svg>") : first, line);
    return svg;
}

struct Figure {
    const char* id;
    const char* title;
    const char* x_label;
    const char* y_label;
    Better x_better, y_better;
    double (*x)(const ModelEntry&);
    double (*y)(const ModelEntry&);
    double x_scale = 1.0;  // x is plotted × this (J → mJ where the figures are small)
};

double accuracy_of(const ModelEntry& m) {
    return m.accuracy.value_or(kNaN);
}

// A row benched with --no-energy has no energy figures: not zero, unknown.
double j_per_token_of(const ModelEntry& m) {
    return m.bench.energy_source.empty() ? kNaN : m.bench.j_per_token;
}

// A scatter plot of the models with their Pareto front; nullopt when no model has both figures.
std::optional<std::string> pareto_plot(const ModelsView& view, const Figure& f,
                                       const std::string& caption) {
    std::vector<const ModelEntry*> shown;
    std::vector<double> xs, ys;
    for (const auto& m : view.models) {
        if (!m.bench.ok) continue;
        const double x = f.x(m) * f.x_scale, y = f.y(m);
        if (!std::isfinite(x) || !std::isfinite(y)) continue;
        shown.push_back(&m);
        xs.push_back(x);
        ys.push_back(y);
    }
    if (shown.empty()) return std::nullopt;
    const std::vector<size_t> front = pareto_front(xs, f.x_better, ys, f.y_better);
    ScatterPlot plot;
    plot.id = f.id;
    plot.title = f.title;
    plot.x.label = f.x_label;
    plot.y.label = f.y_label;
    plot.x_name = f.x_label;
    plot.y_name = f.y_label;
    std::vector<std::string> front_labels;
    for (size_t i = 0; i < shown.size(); ++i) {
        const bool on_front = std::find(front.begin(), front.end(), i) != front.end();
        plot.points.push_back(
            {xs[i], ys[i], shown[i]->label, on_front ? kFrontColor : kOtherColor});
        if (on_front) front_labels.push_back(shown[i]->label);
    }
    return figure(mark_front(render_scatter_plot(plot), front_labels),
                  escape_xml(caption) + fmt::format(" Pareto front (dashed, red): {} of {} models.",
                                                    front.size(), shown.size()));
}

// Accuracy against % of experts pruned, one line per criterion; unpruned models as markers.
std::optional<std::string> pruning_plot(const ModelsView& view) {
    std::map<std::string, std::vector<std::pair<double, double>>> by_criterion;
    for (const auto& m : view.models) {
        if (!m.bench.ok || !m.accuracy || !m.bench.experts_pruned_percent) continue;
        const std::string key = m.bench.criterion.empty() ? "not pruned" : m.bench.criterion;
        by_criterion[key].push_back({*m.bench.experts_pruned_percent, *m.accuracy});
    }
    if (by_criterion.empty()) return std::nullopt;
    LinePlot plot;
    plot.id = "plot-acc-pruned";
    plot.title = "Accuracy against experts pruned, per criterion";
    plot.x.label = "routed experts pruned (%)";
    plot.y.label = "accuracy";
    plot.x_name = "% pruned";
    plot.y_name = "accuracy";
    for (auto& [criterion, points] : by_criterion) {
        std::sort(points.begin(), points.end());
        Series s;
        s.name = criterion;
        s.line = criterion != "not pruned";
        for (const auto& [x, y] : points) {
            s.x.push_back(x);
            s.y.push_back(y);
        }
        plot.series.push_back(std::move(s));
    }
    return figure(render_line_plot(plot),
                  "One series per pruning criterion (simplify's summary.json); the original and "
                  "other unpruned models as markers at their share of experts removed.");
}

std::string reduction_cell(const BenchRow& r, const char* figure_name) {
    const auto it = r.reduction_percent.find(figure_name);
    if (it == r.reduction_percent.end()) return "–";
    return fmt::format("{:+.1f} %", it->second);
}

std::string experts_text(const std::vector<int>& per_layer) {
    if (per_layer.empty()) return "dense";
    const bool same = std::all_of(per_layer.begin(), per_layer.end(),
                                  [&](int n) { return n == per_layer.front(); });
    if (same) return fmt::format("{} × {}", per_layer.front(), per_layer.size());
    std::string out;
    for (const int n : per_layer) {
        if (!out.empty()) out += " ";
        out += std::to_string(n);
    }
    return out;
}

std::string models_table(const ModelsView& view) {
    std::string out;
    // Appends, never "literal" + std::string: GCC 12 warns (-Wrestrict) on such temporaries.
    auto cell = [&out](const char* tag, const std::string& html) {
        out += '<';
        out += tag;
        out += '>';
        out += html;
        out += "</";
        out += tag;
        out += '>';
    };
    out += "<table class=\"compare\" id=\"models\">\n<tr>";
    for (const char* h : {"model", "params", "active / token", "experts per layer", "pruned",
                          "criterion", "TTFT ms", "ITL ms (p50 / p90)", "decode tok/s", "J/token",
                          "W", "peak RSS GiB", "CO2e g / 1000 resp.", "stable"})
        cell("th", h);
    for (const auto& task : view.tasks) cell("th", escape_xml(task));
    for (const char* h : {"accuracy", "J/token reduction", "params reduction"}) cell("th", h);
    out += "</tr>\n";
    for (const auto& m : view.models) {
        const BenchRow& r = m.bench;
        out += "<tr><td title=\"";
        out += escape_xml(r.model);
        out += "\">";
        out += escape_xml(m.label);
        if (r.baseline) out += " (baseline)";
        out += "</td>";
        if (!r.ok) {
            out += fmt::format("<td colspan=\"{}\" class=\"missing\">failed: {}</td></tr>\n",
                               16 + view.tasks.size(), escape_xml(r.error));
            continue;
        }
        cell("td", format_count(double(r.parameters)));
        cell("td", format_count(double(r.active_parameters)));
        cell("td", escape_xml(experts_text(r.experts_per_layer)));
        cell("td", r.experts_pruned_percent ? fmt::format("{:.1f} %", *r.experts_pruned_percent)
                                            : std::string("–"));
        cell("td", escape_xml(r.criterion.empty() ? std::string("–") : r.criterion));
        cell("td", fixed(r.ttft_s * 1e3, 2));
        cell("td", fmt::format("{} ({} / {})", fixed(r.itl_mean_s * 1e3, 2),
                               fixed(r.itl_p50_s * 1e3, 2), fixed(r.itl_p90_s * 1e3, 2)));
        cell("td", fixed(r.decode_tokens_per_s, 1));
        cell("td", fmt::format("{}{}", sig(r.j_per_token), r.energy_measured ? "" : " est"));
        cell("td", fixed(r.average_power_w, 1));
        cell("td", gib(r.peak_rss_bytes));
        cell("td", sig(r.co2e_g_per_1000_responses));
        cell("td", !r.stable ? "–" : *r.stable ? "yes" : "<b>no</b>");
        for (const auto& task : view.tasks) {
            const auto it = m.task_accuracy.find(task);
            cell("td", it == m.task_accuracy.end() ? std::string("–") : fixed(it->second, 4));
        }
        cell("td", m.accuracy ? fixed(*m.accuracy, 4) : std::string("–"));
        cell("td", reduction_cell(r, "j_per_token"));
        cell("td", reduction_cell(r, "parameters"));
        out += "</tr>\n";
    }
    out += "</table>\n";
    return out;
}

}  // namespace

std::map<std::string, double> read_eval_accuracies(const fs::path& file) {
    const Json j = Json::parse(read_file(file), nullptr, false);
    check(j.is_object(), "{}: not the JSON object greenmoe eval --json writes", file.string());
    std::map<std::string, double> out;
    if (j.contains("results") && j["results"].is_object()) {
        std::set<std::string> subtasks;
        if (j.contains("group_subtasks") && j["group_subtasks"].is_object()) {
            for (const auto& [group, list] : j["group_subtasks"].items()) {
                for (const auto& s : list)
                    if (s.is_string()) subtasks.insert(s.get<std::string>());
            }
        }
        for (const auto& [task, entry] : j["results"].items()) {
            if (subtasks.count(task) || !entry.is_object()) continue;
            for (const char* key : {"acc_norm,none", "acc,none"}) {
                if (entry.contains(key) && entry[key].is_number()) {
                    out[task] = entry[key].get<double>();
                    break;
                }
            }
        }
        return out;
    }
    const std::string task = j.value("task", std::string());
    check(!task.empty(),
          "{}: neither lm-evaluation-harness results nor a greenmoe eval result (no 'results' "
          "or 'task')",
          file.string());
    // Perplexity and validation loss are not accuracies: such a file adds none.
    if (task == "hellaswag" && j.contains("acc_norm") && j["acc_norm"].is_number())
        out[task] = j["acc_norm"].get<double>();
    return out;
}

ModelsView build_models_view(const std::vector<BenchRow>& rows, int batch,
                             const std::vector<fs::path>& eval_files) {
    check(!rows.empty(), "report --models: no bench rows");
    ModelsView view;
    view.batch = batch;
    if (view.batch == 0) {
        view.batch = std::numeric_limits<int>::max();
        for (const auto& r : rows) view.batch = std::min(view.batch, r.batch);
    }
    std::map<std::string, int> label_uses;
    for (const auto& r : rows) {
        if (r.batch != view.batch) continue;
        ModelEntry m;
        m.bench = r;
        m.label = model_label(r.model);
        ++label_uses[m.label];
        view.models.push_back(std::move(m));
    }
    check(!view.models.empty(), "report --models: no bench rows at batch size {}", view.batch);
    // Two folders of one name (runs/a/model, runs/b/model): the full paths tell them apart.
    for (auto& m : view.models) {
        if (label_uses[m.label] > 1) m.label = normal_path(m.bench.model);
    }
    auto add_eval = [&](ModelEntry& m, const fs::path& file) {
        for (const auto& [task, acc] : read_eval_accuracies(file)) m.task_accuracy[task] = acc;
        m.eval_files.push_back(file.string());
    };
    for (auto& m : view.models) {
        // The absolute path: the report may run from another folder than the bench did.
        const std::string& folder =
            m.bench.model_absolute.empty() ? m.bench.model : m.bench.model_absolute;
        for (const auto& file : evals_beside(folder)) add_eval(m, file);
    }
    for (const auto& file : eval_files) {
        const Json j = Json::parse(read_file(file), nullptr, false);
        const std::string evaluated =
            j.is_object() ? normal_path(j.value("model_absolute", std::string())) : "";
        bool matched = false;
        for (auto& m : view.models) {
            if (!evaluated.empty() && normal_path(m.bench.model_absolute) == evaluated) {
                add_eval(m, file);
                matched = true;
            }
        }
        usage_check(matched,
                    "--eval {}: it evaluated '{}', which is none of the benchmarked models; put "
                    "it in the model's folder as eval*.json, or bench that model",
                    file.string(), evaluated);
    }
    // The accuracy compared across models averages only the tasks all evaluated models have.
    std::optional<std::set<std::string>> common;
    std::set<std::string> any;
    for (const auto& m : view.models) {
        if (m.task_accuracy.empty()) continue;
        std::set<std::string> tasks;
        for (const auto& [task, acc] : m.task_accuracy) tasks.insert(task);
        any.insert(tasks.begin(), tasks.end());
        if (!common) {
            common = tasks;
        } else {
            std::set<std::string> both;
            std::set_intersection(common->begin(), common->end(), tasks.begin(), tasks.end(),
                                  std::inserter(both, both.begin()));
            common = both;
        }
    }
    if (common) view.tasks.assign(common->begin(), common->end());
    if (any.size() > view.tasks.size())
        view.warnings.push_back(fmt::format(
            "{} task(s) not evaluated for every model are left out of the accuracy compared",
            any.size() - view.tasks.size()));
    for (auto& m : view.models) {
        if (view.tasks.empty() || m.task_accuracy.empty()) continue;
        double sum = 0.0;
        for (const auto& task : view.tasks) sum += m.task_accuracy.at(task);
        m.accuracy = sum / double(view.tasks.size());
    }
    return view;
}

std::string render_models_html(const ModelsView& view, const std::string& title) {
    const BenchRow* any_ok = nullptr;
    for (const auto& m : view.models) {
        if (m.bench.ok && !any_ok) any_ok = &m.bench;
    }
    std::string body = fmt::format("<h1>{}</h1>\n", escape_xml(title));
    body += fmt::format("<p class=\"lead\">{} model{} at batch size {}", view.models.size(),
                        view.models.size() == 1 ? "" : "s", view.batch);
    if (any_ok) {
        body += fmt::format(
            "; protocol: {} prompt tokens, {} new tokens (greedy), {} warm-up and {} measured "
            "runs; energy {}",
            any_ok->prompt_tokens, any_ok->new_tokens, any_ok->warmup, any_ok->repeats,
            escape_xml(any_ok->energy_source.empty() ? "not measured" : any_ok->energy_source));
    }
    body += ". Accuracy: ";
    std::string tasks;
    for (const auto& t : view.tasks) {
        if (!tasks.empty()) tasks += ", ";
        tasks += t;
    }
    body += view.tasks.empty()
                ? std::string("no eval results found beside the models")
                : fmt::format("the mean of {} (acc_norm where the task has it, else acc)",
                              escape_xml(tasks));
    body += ".</p>\n";
    for (const auto& w : view.warnings)
        body += fmt::format("<p class=\"lead\">Note: {}.</p>\n", escape_xml(w));
    body += "<h2 class=\"section\" id=\"models-table\">Models</h2>\n";
    // Many columns: the table scrolls sideways rather than pushing the page wider.
    body += "<div style=\"overflow-x:auto\">\n";
    body += models_table(view);
    body += "</div>\n";

    // Tiny models use millijoules or microjoules per token: tick labels stay short.
    double max_j = 0.0;
    for (const auto& m : view.models) {
        if (m.bench.ok && std::isfinite(j_per_token_of(m)))
            max_j = std::max(max_j, j_per_token_of(m));
    }
    const double energy_scale = max_j >= 0.1 || max_j == 0.0 ? 1.0 : max_j >= 1e-4 ? 1e3 : 1e6;
    const char* energy_label = energy_scale == 1.0   ? "J/token"
                               : energy_scale == 1e3 ? "mJ/token"
                                                     : "µJ/token";
    const std::vector<std::pair<Figure, std::string>> figures = {
        {{"plot-acc-energy", "Accuracy against energy per token", energy_label, "accuracy",
          Better::Lower, Better::Higher, j_per_token_of, accuracy_of, energy_scale},
         "Up and to the left is better."},
        {{"plot-speed-energy", "Decode speed against energy per token", energy_label,
          "decode tokens/s", Better::Lower, Better::Higher, j_per_token_of,
          [](const ModelEntry& m) { return m.bench.decode_tokens_per_s; }, energy_scale},
         "Up and to the left is better."},
        {{"plot-acc-memory", "Accuracy against peak memory", "peak RSS (GiB)", "accuracy",
          Better::Lower, Better::Higher,
          [](const ModelEntry& m) { return m.bench.peak_rss_bytes / (1024.0 * 1024.0 * 1024.0); },
          accuracy_of},
         "Peak resident memory while the model was loaded and measured."},
        {{"plot-acc-params", "Accuracy against parameters", "parameters", "accuracy", Better::Lower,
          Better::Higher, [](const ModelEntry& m) { return double(m.bench.parameters); },
          accuracy_of},
         "All weights, every expert counted."},
    };
    body += "<h2 class=\"section\" id=\"pareto\">Pareto fronts</h2>\n<div class=\"plots\">\n";
    std::vector<std::string> missing;
    for (const auto& [f, caption] : figures) {
        if (const auto fig = pareto_plot(view, f, caption))
            body += *fig;
        else
            missing.push_back(f.title);
    }
    if (const auto fig = pruning_plot(view))
        body += *fig;
    else
        missing.push_back("Accuracy against experts pruned");
    body += "</div>\n";
    if (!missing.empty()) {
        std::string list;
        for (const auto& w : missing) {
            if (!list.empty()) list += "; ";
            list += w;
        }
        body += fmt::format(
            "<p class=\"missing plot-missing\">Not recorded for any model, so not plotted: "
            "{}.</p>\n",
            escape_xml(list));
    }
    body += fmt::format(
        "<footer>Written by <code>greenmoe report --models</code> from <code>greenmoe "
        "bench</code> rows. Self-contained: no scripts, fonts or images are loaded from "
        "elsewhere. CO2e: {}.</footer>\n",
        escape_xml(kGreenAlgorithmsCredit));
    return html_page(title, body);
}

}  // namespace greenmoe::report

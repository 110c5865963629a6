// The report page (see html_report.h): run cards, comparison plots, Figure 1, expert load.
#include "greenmoe/report/html_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "greenmoe/io/atomic_file.h"
#include "greenmoe/report/svg_plot.h"

namespace greenmoe::report {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kHellaSwagChance = 0.25;  // four endings per item

// Three significant digits in fixed notation (never "1e+03").
std::string sig3(double v) {
    if (!std::isfinite(v)) return "not recorded";
    if (v == 0) return "0";
    const int mag = static_cast<int>(std::floor(std::log10(std::abs(v))));
    return fmt::format("{:.{}f}", v, std::clamp(2 - mag, 0, 9));
}

template <typename T>
std::optional<T> config_value(const json& config, const char* section, const char* key) {
    auto s = config.find(section);
    if (s == config.end() || !s->is_object()) return std::nullopt;
    auto it = s->find(key);
    if (it == s->end()) return std::nullopt;
    if constexpr (std::is_same_v<T, std::string>) {
        if (!it->is_string()) return std::nullopt;
    } else {
        if (!it->is_number()) return std::nullopt;
    }
    return it->get<T>();
}

const json& last_config(const RunData& run) {
    static const json kEmpty = json::object();
    return run.starts.empty() ? kEmpty : run.starts.back().config;
}

std::string run_color(size_t index) {
    return palette_color(index);
}

std::string loss_text(const std::optional<double>& v) {
    return v && std::isfinite(*v) ? fmt::format("{:.4f}", *v) : "not recorded";
}

struct ModelSummary {
    std::string size, kinds, experts;
    bool moe = false;
};

ModelSummary model_summary(const RunData& run) {
    ModelSummary m;
    const json& c = last_config(run);
    const auto n_layer = config_value<int64_t>(c, "model", "n_layer");
    const auto n_head = config_value<int64_t>(c, "model", "n_head");
    const auto n_embd = config_value<int64_t>(c, "model", "n_embd");
    const auto block = config_value<int64_t>(c, "model", "block_size");
    if (n_layer && n_head && n_embd) {
        m.size = fmt::format("{} layers × {} heads × {} dims", *n_layer, *n_head, *n_embd);
        if (block) m.size += fmt::format(", context {}", *block);
    } else {
        m.size = "not recorded";
    }
    const std::string mlp = config_value<std::string>(c, "model", "mlp").value_or("");
    const std::string attn = config_value<std::string>(c, "model", "attn").value_or("");
    m.kinds = fmt::format("{} / {}", mlp.empty() ? "?" : mlp, attn.empty() ? "?" : attn);
    const bool moe_mlp = !mlp.empty() && mlp != "dense";
    const bool moe_attn = attn == "moa";
    m.moe = moe_mlp || moe_attn;
    for (const auto& t : run.train) m.moe = m.moe || !t.moe.empty();
    const auto experts = config_value<int64_t>(c, "model", "n_experts");
    const auto top_k = config_value<int64_t>(c, "model", "top_k").value_or(1);
    if (!m.moe) {
        m.experts = "none (dense)";
    } else {
        // Experts each token goes to: the config's top_k is olnn's (and MoA's) k only.
        std::string k;
        if (moe_mlp) {
            const int64_t mk = mlp == "olnn" ? top_k : mlp == "gshard" ? 2 : 1;
            k = fmt::format("top-{} ({})", mk, mlp);
        }
        if (moe_attn) k += fmt::format("{}top-{} (moa)", k.empty() ? "" : ", ", top_k);
        m.experts = experts ? fmt::format("{}, {}", *experts, k) : k;
    }
    return m;
}

void row(std::string& out, const std::string& key, const std::string& value_html) {
    out +=
        fmt::format("<tr><td class=\"k\">{}</td><td>{}</td></tr>\n", escape_xml(key), value_html);
}

std::string credit_html() {
    return fmt::format("<p class=\"credit\">CO2e: {}</p>\n", escape_xml(kGreenAlgorithmsCredit));
}

// A healed or fine-tuned run's experts: kept per block (pruned models), with the original
// expert numbers when parent.json records them. Empty for unpruned models.
std::string experts_per_block(const RunData& run) {
    const json& c = last_config(run);
    const auto model = c.find("model");
    if (model == c.end() || !model->is_object()) return "";
    const auto by_layer = model->find("n_experts_by_layer");
    if (by_layer == model->end() || !by_layer->is_array() || by_layer->empty()) return "";
    const json* kept = nullptr;
    if (run.parent) {
        const auto simplified = run.parent->find("simplified");
        if (simplified != run.parent->end() && simplified->is_object()) {
            const auto k = simplified->find("kept_experts");
            if (k != simplified->end() && k->is_object()) kept = &*k;
        }
    }
    const auto original = config_value<int64_t>(c, "model", "n_experts");
    std::string out;
    for (size_t block = 0; block < by_layer->size(); ++block) {
        const json& n = (*by_layer)[block];
        if (!n.is_number_integer() || n.get<int64_t>() <= 0) continue;
        if (!out.empty()) out += "; ";
        out += fmt::format("block {}: {}", block, n.get<int64_t>());
        if (original) out += fmt::format(" of {}", *original);
        if (kept) {
            const auto it = kept->find(std::to_string(block));
            if (it != kept->end() && it->is_array()) {
                std::string list;
                for (const auto& e : *it) {
                    if (!list.empty()) list += ' ';
                    list += e.dump();
                }
                out += " (originally ";
                out += list;
                out += ")";
            }
        }
    }
    return out;
}

// Where a run started from (--init-from) and what those weights cost (parent.json).
void parent_rows(std::string& out, const RunData& run, const RunTotals& t) {
    std::string from;
    if (run.parent) from = run.parent->value("path", std::string());
    if (from.empty() && !run.starts.empty()) from = run.starts.front().init_from;
    if (from.empty()) return;
    std::string text = from;
    if (run.parent) {
        const json& p = *run.parent;
        if (p.contains("simplified") && p["simplified"].is_object()) {
            const std::string criterion = p["simplified"].value("criterion", std::string());
            text += ", pruned by greenmoe simplify";
            if (!criterion.empty()) {
                text += " (";
                text += criterion;
                text += ")";
            }
        }
        const std::string parent_run = p.value("run", std::string());
        if (!parent_run.empty()) text += "; trained in " + parent_run;
    }
    row(out, "Started from", escape_xml(text));
    if (t.parent_co2e_g) {
        std::string cost = format_co2e(*t.parent_co2e_g) + " (the parent run's emissions.csv";
        if (run.parent && run.parent->contains("segments") &&
            (*run.parent)["segments"].is_number_integer()) {
            const int64_t n = (*run.parent)["segments"].get<int64_t>();
            cost += fmt::format(", {} segment{}", n, n == 1 ? "" : "s");
        }
        row(out, "Parent CO2e", escape_xml(cost + ")"));
        if (t.co2e_g)
            row(out, "CO2e with parent",
                escape_xml(format_co2e(*t.co2e_g + *t.parent_co2e_g) + " " + pue_note(t.pue)));
    } else {
        row(out, "Parent CO2e", "<span class=\"missing\">not recorded</span>");
    }
}

std::string run_card(const RunData& run, size_t index, bool& co2e_shown) {
    const RunTotals t = run_totals(run);
    const ModelSummary m = model_summary(run);
    std::string out = fmt::format(
        "<section class=\"card\" id=\"run-{}\"><h2><span class=\"swatch\" "
        "style=\"background:{}\"></span>{}</h2>\n<table class=\"summary\">\n",
        index, run_color(index), escape_xml(run.name));
    row(out, "Folder", escape_xml(run.folder.string()));
    row(out, "Model", escape_xml(m.size));
    row(out, "MLP / attention", escape_xml(m.kinds));
    row(out, "Experts", escape_xml(m.experts));
    const std::string per_block = experts_per_block(run);
    if (!per_block.empty()) row(out, "Experts per block", escape_xml(per_block));
    const int64_t params = run.starts.empty() ? 0 : run.starts.back().parameters;
    row(out, "Parameters",
        params > 0 ? escape_xml(format_count(static_cast<double>(params))) : "not recorded");
    row(out, "Tokens",
        t.tokens ? escape_xml(format_count(static_cast<double>(*t.tokens))) : "not recorded");
    const auto max_steps = config_value<int64_t>(last_config(run), "train", "max_steps");
    std::string steps = t.last_step ? std::to_string(*t.last_step) : "not recorded";
    if (max_steps) steps += fmt::format(" of {}", *max_steps);
    steps += run.done ? " (finished)" : " (not finished)";
    row(out, "Steps", escape_xml(steps));
    if (run.starts.size() > 1) {
        std::string from;
        for (size_t i = 1; i < run.starts.size(); ++i)
            from += (i > 1 ? ", " : "") + std::to_string(run.starts[i].resumed_from_step);
        row(out, "Resumed",
            escape_xml(fmt::format("{}× (from step {})", run.starts.size() - 1, from)));
    }
    row(out, "Train time",
        t.train_seconds ? escape_xml(format_duration(*t.train_seconds)) : "not recorded");
    row(out, "Final loss",
        escape_xml(fmt::format("train {}, val {}", loss_text(t.final_train_loss),
                               loss_text(t.final_val_loss))));
    if (t.last_eval) {
        const EvalRecord& e = *t.last_eval;
        std::string s = fmt::format("acc_norm {:.4f}", *e.acc_norm);
        if (e.acc) s += fmt::format(", acc {:.4f}", *e.acc);
        s += fmt::format(" (step {}", e.step);
        if (e.items) s += fmt::format(", {} items", *e.items);
        if (!e.file.empty()) {
            s += ", ";
            s += std::filesystem::path(e.file).filename().string();
            s += " from eval --json";
        }
        row(out, "HellaSwag", escape_xml(s + ")"));
    } else {
        row(out, "HellaSwag", "<span class=\"missing\">not recorded</span>");
    }
    std::string how = " ";
    how += pue_note(t.pue);
    if (!t.energy_source.empty()) {
        how += t.measured ? ", measured" : ", estimated";
        if (t.energy_source != "estimate") how += " (" + t.energy_source + ")";
    }
    row(out, "Energy",
        t.energy_j ? escape_xml(format_energy(*t.energy_j) + how)
                   : "<span class=\"missing\">not recorded</span>");
    row(out, "CO2e",
        t.co2e_g ? escape_xml(format_co2e(*t.co2e_g) + how)
                 : "<span class=\"missing\">not recorded</span>");
    parent_rows(out, run, t);
    if (!run.emissions.empty()) {
        double seconds = 0;
        for (const auto& r : run.emissions) seconds += r.duration_s.value_or(0);
        row(out, "emissions.csv",
            escape_xml(fmt::format("{} segment{}, {} tracked", run.emissions.size(),
                                   run.emissions.size() == 1 ? "" : "s",
                                   format_duration(seconds))));
    }
    if (run.ignored_records > 0)
        row(out, "Other records", fmt::format("{} of unknown type (ignored)", run.ignored_records));
    out += "</table>\n";
    if (t.co2e_g) {
        out += credit_html();
        co2e_shown = true;
    }
    if (!run.samples.empty()) {
        const SampleRecord& s = run.samples.back();
        constexpr size_t kMaxSample = 600;
        std::string text = s.text.size() > kMaxSample ? s.text.substr(0, kMaxSample) + "…" : s.text;
        out += fmt::format(
            "<details><summary>Last sample (step {})</summary><pre class=\"sample\">{}</pre>"
            "</details>\n",
            s.step, escape_xml(text));
    }
    out += "</section>\n";
    return out;
}

std::string figure(const std::string& svg, const std::string& caption_html) {
    return fmt::format("<figure>{}{}</figure>\n", svg,
                       caption_html.empty() ? "" : "<figcaption>" + caption_html + "</figcaption>");
}

std::string missing(const std::string& what) {
    return fmt::format("<p class=\"missing plot-missing\">{}: not recorded.</p>\n",
                       escape_xml(what));
}

// A run's series name on shared plots: its name, plus what the series is when it has several.
std::string series_name(const RunData& run, size_t n_runs, const std::string& what) {
    if (n_runs == 1) return what;
    return what.empty() ? run.name : run.name + " " + what;
}

std::optional<std::string> loss_plot(const std::vector<RunData>& runs) {
    LinePlot p;
    p.id = "plot-loss";
    p.title = "Loss";
    p.x.label = "step";
    p.y.label = "cross-entropy loss";
    p.x_name = "step";
    p.y_name = "loss";
    bool any = false;
    for (size_t r = 0; r < runs.size(); ++r) {
        Series train{series_name(runs[r], runs.size(), "train"), {}, {}, run_color(r)};
        for (const auto& t : runs[r].train) {
            train.x.push_back(static_cast<double>(t.step));
            train.y.push_back(t.loss);
        }
        Series val{series_name(runs[r], runs.size(), "val"),
                   {},
                   {},
                   runs.size() == 1 ? palette_color(1) : run_color(r)};
        val.dashed = true;
        for (const auto& v : runs[r].val) {
            val.x.push_back(static_cast<double>(v.step));
            val.y.push_back(v.val_loss);
        }
        any = any || !train.x.empty() || !val.x.empty();
        if (!train.x.empty()) p.series.push_back(std::move(train));
        if (!val.x.empty()) p.series.push_back(std::move(val));
    }
    if (!any) return std::nullopt;
    return figure(render_line_plot(p),
                  "Train loss (solid) at logged steps, validation loss "
                  "(dashed) at validation steps.");
}

std::optional<std::string> hellaswag_plot(const std::vector<RunData>& runs) {
    LinePlot p;
    p.id = "plot-hellaswag";
    p.title = "HellaSwag accuracy";
    p.x.label = "step";
    p.y.label = "accuracy";
    p.x_name = "step";
    p.y_name = "accuracy";
    p.references.push_back({kHellaSwagChance, "chance 0.25"});
    for (size_t r = 0; r < runs.size(); ++r) {
        Series norm{series_name(runs[r], runs.size(), "acc_norm"), {}, {}, run_color(r)};
        Series acc{series_name(runs[r], runs.size(), "acc"),
                   {},
                   {},
                   runs.size() == 1 ? palette_color(1) : run_color(r)};
        acc.dashed = true;
        for (const auto& e : runs[r].evals) {
            if (e.task != "hellaswag" && !e.task.empty()) continue;
            if (e.acc_norm) {
                norm.x.push_back(static_cast<double>(e.step));
                norm.y.push_back(*e.acc_norm);
            }
            if (e.acc) {
                acc.x.push_back(static_cast<double>(e.step));
                acc.y.push_back(*e.acc);
            }
        }
        if (!norm.x.empty()) p.series.push_back(std::move(norm));
        if (!acc.x.empty()) p.series.push_back(std::move(acc));
    }
    if (p.series.empty()) return std::nullopt;
    return figure(render_line_plot(p),
                  "acc_norm (solid): the ending with the best length-normalised log-likelihood; "
                  "acc (dashed): best total log-likelihood.");
}

std::optional<std::string> throughput_plot(const std::vector<RunData>& runs) {
    LinePlot p;
    p.id = "plot-tokens-per-s";
    p.title = "Throughput";
    p.x.label = "step";
    p.y.label = "tokens / s";
    p.x_name = "step";
    p.y_name = "tokens/s";
    for (size_t r = 0; r < runs.size(); ++r) {
        Series s{series_name(runs[r], runs.size(), ""), {}, {}, run_color(r)};
        for (const auto& t : runs[r].train) {
            if (!t.tokens_per_s) continue;
            s.x.push_back(static_cast<double>(t.step));
            s.y.push_back(*t.tokens_per_s);
        }
        if (!s.x.empty()) p.series.push_back(std::move(s));
    }
    if (p.series.empty()) return std::nullopt;
    return figure(render_line_plot(p), "Training tokens per second of each logged step.");
}

// Energy or CO2e (cumulative, all segments) against training time.
std::optional<std::string> energy_plot(const std::vector<RunData>& runs, bool co2e) {
    LinePlot p;
    p.id = co2e ? "plot-co2e" : "plot-energy";
    p.title = co2e ? "CO2e over training time" : "Energy over training time";
    p.x.label = "training time (s)";
    p.y.label = co2e ? "CO2e incl. PUE (g)" : "energy incl. PUE (J)";
    p.x_name = "s";
    p.y_name = co2e ? "g CO2e" : "J";
    for (size_t r = 0; r < runs.size(); ++r) {
        Series s{series_name(runs[r], runs.size(), ""), {}, {}, run_color(r)};
        for (const auto& t : runs[r].train) {
            const auto& v = co2e ? t.energy.co2e_g : t.energy.energy_j;
            if (!v || !t.train_seconds) continue;
            s.x.push_back(*t.train_seconds);
            s.y.push_back(*v);
        }
        if (!s.x.empty()) p.series.push_back(std::move(s));
    }
    if (p.series.empty()) return std::nullopt;
    // Runs whose totals differ by over two decades: on a linear axis the cheap ones lie flat.
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (const auto& s : p.series) {
        const double total = *std::max_element(s.y.begin(), s.y.end());
        if (total > 0) {
            lo = std::min(lo, total);
            hi = std::max(hi, total);
        }
    }
    p.y.log = hi > 0 && hi / lo > 100.0;
    std::string caption =
        "Cumulative since the run began (all segments of a resumed run), including the "
        "data-centre PUE (as emissions.csv's energy_consumed).";
    if (co2e) caption += " " + escape_xml(kGreenAlgorithmsCredit) + ".";
    return figure(render_line_plot(p), caption);
}

// The study's Figure 1: what each run's quality cost in CO2e.
std::string figure1(const std::vector<RunData>& runs, bool& co2e_shown) {
    ScatterPlot p;
    p.id = "plot-figure1";
    p.title = "Figure 1: HellaSwag accuracy against CO2e";
    p.x.label = "total CO2e incl. PUE (g)";
    p.y.label = "HellaSwag acc_norm (last eval)";
    p.x_name = "g CO2e";
    p.y_name = "acc_norm";
    p.width = 760;
    p.height = 420;
    p.references.push_back({kHellaSwagChance, "chance 0.25"});
    std::vector<std::string> left_out, with_parent;
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (size_t r = 0; r < runs.size(); ++r) {
        const RunTotals t = run_totals(runs[r]);
        if (!t.co2e_g || !t.last_eval || !std::isfinite(*t.co2e_g)) {
            left_out.push_back(runs[r].name);
            continue;
        }
        // A run that started from other weights owes their cost too.
        const double co2e = *t.co2e_g + t.parent_co2e_g.value_or(0.0);
        if (t.parent_co2e_g) with_parent.push_back(runs[r].name);
        p.points.push_back({co2e, *t.last_eval->acc_norm, runs[r].name, run_color(r)});
        if (co2e > 0) {
            lo = std::min(lo, co2e);
            hi = std::max(hi, co2e);
        }
    }
    // Over two decades a linear axis crushes the cheap runs into one corner.
    bool all_positive = true;
    for (const auto& pt : p.points) all_positive = all_positive && pt.x > 0;
    p.x.log = all_positive && hi > 0 && hi / lo > 100.0;
    if (!p.x.log) p.x.min = 0.0;
    std::string caption =
        "One point per run: acc_norm of its last HellaSwag evaluation against its total CO2e "
        "(incl. PUE). ";
    caption += escape_xml(kGreenAlgorithmsCredit);
    caption += ".";
    if (!with_parent.empty()) {
        std::string names;
        for (const auto& n : with_parent) names += (names.empty() ? "" : ", ") + n;
        caption += " Includes the CO2e of the weights they started from (parent.json): ";
        caption += escape_xml(names);
        caption += ".";
    }
    if (!left_out.empty()) {
        std::string names;
        for (const auto& n : left_out) names += (names.empty() ? "" : ", ") + n;
        caption += " Not plotted (no HellaSwag eval or CO2e recorded): " + escape_xml(names) + ".";
    }
    if (p.points.empty())
        return missing("Figure 1 (HellaSwag against CO2e)") + "<p class=\"lead\">" + caption +
               "</p>\n";
    co2e_shown = true;
    return figure(render_scatter_plot(p), caption);
}

// Rows (layer, kind) and columns (experts) of a run's load maps, in log order.
struct LoadLayout {
    std::vector<std::pair<int, std::string>> rows;
    size_t experts = 0;
};

LoadLayout load_layout(const RunData& run) {
    LoadLayout l;
    std::set<std::pair<int, std::string>> seen;
    for (const auto& t : run.train) {
        for (const auto& m : t.moe) {
            if (seen.insert({m.layer, m.kind}).second) l.rows.push_back({m.layer, m.kind});
            l.experts = std::max(l.experts, m.load.size());
        }
    }
    std::sort(l.rows.begin(), l.rows.end());
    return l;
}

std::vector<double> load_matrix(const TrainRecord& t, const LoadLayout& l) {
    std::vector<double> v(l.rows.size() * l.experts, kNaN);
    for (const auto& m : t.moe) {
        const auto it = std::find(l.rows.begin(), l.rows.end(), std::make_pair(m.layer, m.kind));
        const size_t r = static_cast<size_t>(it - l.rows.begin());
        for (size_t e = 0; e < m.load.size(); ++e) v[r * l.experts + e] = m.load[e];
    }
    return v;
}

// One row per run: what it is, what it reached, what it cost. Energy figures include the PUE.
std::string comparison_table(const std::vector<RunData>& runs) {
    const std::string none = "<span class=\"missing\">not recorded</span>";
    std::string out =
        "<table class=\"compare\" id=\"comparison\">\n<thead><tr><th>Run</th>"
        "<th>Parameters</th><th>Tokens</th><th>Val loss</th><th>HellaSwag acc_norm</th>"
        "<th>J/token (incl. PUE)</th><th>CO2e (incl. PUE)</th></tr></thead>\n<tbody>\n";
    for (size_t r = 0; r < runs.size(); ++r) {
        const RunData& run = runs[r];
        const RunTotals t = run_totals(run);
        const int64_t params = run.starts.empty() ? 0 : run.starts.back().parameters;
        std::string cells;
        auto cell = [&](const std::string& html) {
            cells += "<td>";
            cells += html;
            cells += "</td>";
        };
        cell(fmt::format("<span class=\"swatch\" style=\"background:{}\"></span> {}", run_color(r),
                         escape_xml(run.name)));
        cell(params > 0 ? escape_xml(format_count(static_cast<double>(params))) : none);
        cell(t.tokens ? escape_xml(format_count(static_cast<double>(*t.tokens))) : none);
        cell(t.final_val_loss && std::isfinite(*t.final_val_loss)
                 ? fmt::format("{:.4f}", *t.final_val_loss)
                 : none);
        cell(t.last_eval
                 ? fmt::format("{:.4f} (step {})", *t.last_eval->acc_norm, t.last_eval->step)
                 : none);
        cell(t.j_per_token && std::isfinite(*t.j_per_token)
                 ? escape_xml(sig3(*t.j_per_token) + " J")
                 : none);
        std::string co2e = t.co2e_g ? format_co2e(*t.co2e_g) : std::string();
        if (t.co2e_g && t.parent_co2e_g) {
            co2e += " + ";
            co2e += format_co2e(*t.parent_co2e_g);
            co2e += " parent";
        }
        cell(co2e.empty() ? none : escape_xml(co2e));
        out += "<tr>";
        out += cells;
        out += "</tr>\n";
    }
    out += "</tbody></table>\n";
    return out;
}

// Dropped-token share or load CV of the MoE layers at each logged step: one line per layer
// for a single run, the mean over its layers per run for several.
std::optional<std::string> moe_step_plot(const std::vector<RunData>& runs, bool dropped) {
    LinePlot p;
    p.id = dropped ? "plot-dropped" : "plot-load-cv";
    p.title = dropped ? "Dropped tokens" : "Load imbalance";
    p.x.label = "step";
    p.y.label = dropped ? "dropped fraction of routed choices" : "CV of tokens per expert";
    p.x_name = "step";
    p.y_name = dropped ? "dropped" : "CV";
    p.y.min = 0.0;
    auto value = [&](const MoeLayerLoad& m) {
        const auto& v = dropped ? m.dropped : m.load_cv;
        return v ? *v : kNaN;
    };
    for (size_t r = 0; r < runs.size(); ++r) {
        const RunData& run = runs[r];
        if (runs.size() == 1) {
            const LoadLayout l = load_layout(run);
            for (size_t row = 0; row < l.rows.size(); ++row) {
                const auto& [layer, kind] = l.rows[row];
                Series s{fmt::format("block {} {}", layer, kind), {}, {}, palette_color(row)};
                for (const auto& t : run.train) {
                    for (const auto& m : t.moe) {
                        if (m.layer != layer || m.kind != kind) continue;
                        s.x.push_back(static_cast<double>(t.step));
                        s.y.push_back(value(m));
                    }
                }
                if (!s.x.empty()) p.series.push_back(std::move(s));
            }
            continue;
        }
        Series s{run.name, {}, {}, run_color(r)};
        for (const auto& t : run.train) {
            if (t.moe.empty()) continue;
            double sum = 0;
            int n = 0;
            for (const auto& m : t.moe) {
                const double v = value(m);
                if (!std::isfinite(v)) continue;
                sum += v;
                ++n;
            }
            s.x.push_back(static_cast<double>(t.step));
            s.y.push_back(n > 0 ? sum / n : kNaN);
        }
        if (!s.x.empty()) p.series.push_back(std::move(s));
    }
    if (p.series.empty()) return std::nullopt;
    std::string caption =
        dropped ? "Share of the routed expert choices dropped because an expert was full "
                  "(capacity factor), at each logged step."
                : "Coefficient of variation of the tokens each expert received (0: perfectly "
                  "balanced), at each logged step.";
    caption += runs.size() == 1 ? " One line per MoE layer." : " Mean over each run's MoE layers.";
    return figure(render_line_plot(p), caption);
}

std::string load_section(const RunData& run, size_t index, const ReportOptions& options) {
    std::vector<const TrainRecord*> with_moe;
    for (const auto& t : run.train) {
        if (!t.moe.empty()) with_moe.push_back(&t);
    }
    if (with_moe.empty()) return "";
    const LoadLayout l = load_layout(run);
    if (l.rows.empty() || l.experts == 0) return "";
    HeatMap base;
    for (const auto& [layer, kind] : l.rows)
        base.row_labels.push_back(fmt::format("block {} {}", layer, kind));
    for (size_t e = 0; e < l.experts; ++e) base.col_labels.push_back(fmt::format("E{}", e));
    base.value_name = "load";
    // One colour scale for the last step and the snapshots, so that they compare.
    std::vector<const TrainRecord*> picks;
    const size_t n = with_moe.size();
    const size_t k = std::min<size_t>(static_cast<size_t>(std::max(options.load_snapshots, 0)), n);
    if (k >= 2 && n >= 3) {
        for (size_t i = 0; i < k; ++i) {
            const TrainRecord* t = with_moe[(i * (n - 1) + (k - 1) / 2) / (k - 1)];
            if (picks.empty() || picks.back() != t) picks.push_back(t);
        }
    }
    double vmax = 0;
    for (const TrainRecord* t :
         picks.empty() ? std::vector<const TrainRecord*>{with_moe.back()} : picks) {
        for (const auto& m : t->moe) {
            for (double v : m.load) {
                if (std::isfinite(v)) vmax = std::max(vmax, v);
            }
        }
    }
    for (const auto& m : with_moe.back()->moe) {
        for (double v : m.load) {
            if (std::isfinite(v)) vmax = std::max(vmax, v);
        }
    }
    base.vmax = vmax > 0 ? vmax : 1.0;

    std::string out = fmt::format(
        "<section class=\"moe\" id=\"moe-{}\"><h3><span class=\"swatch\" style=\"background:{}\">"
        "</span>Expert load: {}</h3>\n",
        index, run_color(index), escape_xml(run.name));
    HeatMap last = base;
    last.values = load_matrix(*with_moe.back(), l);
    last.id = fmt::format("plot-load-{}", index);
    last.title = fmt::format("Load per expert at step {}", with_moe.back()->step);
    last.x_label = "expert";
    last.y_label = "MoE layer";
    out += figure(render_heat_map(last),
                  fmt::format("Fraction of the routed choices each expert received, per layer; "
                              "uniform = {:.3f}.",
                              1.0 / static_cast<double>(l.experts)));
    if (picks.size() >= 2) {
        out += "<figure class=\"snapshots-figure\"><div class=\"snapshots\">\n";
        const double cell = std::clamp(160.0 / static_cast<double>(l.experts), 3.0, 16.0);
        for (size_t i = 0; i < picks.size(); ++i) {
            HeatMap s = base;
            s.id = fmt::format("plot-load-{}-t{}", index, i);
            s.title = fmt::format("step {}", picks[i]->step);
            s.values = load_matrix(*picks[i], l);
            s.cell = static_cast<int>(cell);
            s.show_values = false;
            s.color_bar = false;
            s.row_labels.clear();
            for (const auto& [layer, kind] : l.rows)
                s.row_labels.push_back(fmt::format("b{} {}", layer, kind));
            s.col_labels.assign(l.experts, "");
            out += render_heat_map(s);
        }
        out +=
            "</div><figcaption>The same map over training (same colour scale); rows are "
            "blocks.</figcaption></figure>\n";
    }
    out += "</section>\n";
    return out;
}

constexpr const char* kStyle = R"CSS(
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
background:#f5f6f8;color:#222}
main{max-width:1240px;margin:0 auto;padding:14px 20px 30px}
h1{font-size:22px;margin:6px 0 4px}
h2.section{font-size:18px;margin:22px 0 8px;border-bottom:1px solid #ccc;padding-bottom:3px}
h3{font-size:15px;margin:4px 0 8px;display:flex;align-items:center;gap:8px}
.lead{color:#555;margin:0 0 10px;font-size:14px}
.runs{display:grid;grid-template-columns:repeat(auto-fill,minmax(390px,1fr));gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px}
.card h2{font-size:17px;margin:0 0 6px;display:flex;align-items:center;gap:8px;word-break:break-all}
.swatch{width:14px;height:14px;border-radius:3px;display:inline-block;flex:none}
table.summary{border-collapse:collapse;font-size:13px}
table.summary td{padding:2px 10px 2px 0;vertical-align:top}
td.k{color:#666;white-space:nowrap}
table.compare{border-collapse:collapse;font-size:13px;background:#fff;border:1px solid #ddd}
table.compare th,table.compare td{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}
table.compare th:first-child,table.compare td:first-child{text-align:left}
table.compare th{background:#f0f1f4}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:12px}
figure{margin:0 0 12px;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
figure svg{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:12px;color:#555;padding:6px 8px 0}
.missing{color:#888;font-style:italic}
p.plot-missing{background:#fff;border:1px dashed #ccc;border-radius:6px;padding:10px 14px;margin:0 0 12px}
.credit{font-size:12px;color:#555;margin:6px 0 0}
.snapshots{display:flex;flex-wrap:wrap;gap:8px;justify-content:center}
.snapshots svg{margin:0}
.moe{margin-bottom:8px}
pre.sample{white-space:pre-wrap;font-size:12px;background:#f7f7f7;padding:6px;max-height:180px;
overflow:auto}
details{font-size:13px;margin-top:6px}
svg .pt:hover{fill-opacity:1;stroke:#000;stroke-width:1}
svg .cell:hover{stroke:#000;stroke-width:2}
footer{font-size:12px;color:#666;margin-top:20px;border-top:1px solid #ddd;padding-top:8px}
)CSS";

// Runs first in <body>: records script and resource errors, and marks the page loaded.
constexpr const char* kScript = R"JS(
(function () {
  var errors = [];
  function note(message) {
    errors.push(String(message));
    document.body.setAttribute('data-errors', errors.join(' | '));
  }
  window.onerror = function (message, source, line) {
    note(message + (line ? ' (line ' + line + ')' : ''));
  };
  window.addEventListener('error', function (e) {
    if (e.target && e.target !== window) note('failed to load ' + (e.target.src || e.target.href || e.target.tagName));
  }, true);
  window.addEventListener('load', function () {
    document.body.setAttribute('data-points', String(document.querySelectorAll('svg .pt').length));
    document.body.setAttribute('data-plots', String(document.querySelectorAll('svg.plot').length));
    document.body.setAttribute('data-status', 'ok');
  });
})();
)JS";

}  // namespace

std::string format_count(double v) {
    if (!std::isfinite(v)) return "not recorded";
    const double a = std::abs(v);
    if (a >= 1e12) return sig3(v / 1e12) + "T";
    if (a >= 1e9) return sig3(v / 1e9) + "G";
    if (a >= 1e6) return sig3(v / 1e6) + "M";
    if (a >= 1e3) return sig3(v / 1e3) + "k";
    return v == std::floor(v) ? fmt::format("{:.0f}", v) : sig3(v);
}

std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "not recorded";
    if (seconds < 60) return fmt::format("{:.1f} s", seconds);
    if (seconds >= 1e15) return fmt::format("{:.3g} h", seconds / 3600);  // past int64 minutes
    const auto s = static_cast<int64_t>(std::llround(seconds));
    if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
    return fmt::format("{} h {:02} min", s / 3600, (s % 3600) / 60);
}

std::string format_energy(double joules) {
    if (!std::isfinite(joules)) return "not recorded";
    std::string j;
    const double a = std::abs(joules);
    if (a >= 1e9)
        j = sig3(joules / 1e9) + " GJ";
    else if (a >= 1e6)
        j = sig3(joules / 1e6) + " MJ";
    else if (a >= 1e3)
        j = sig3(joules / 1e3) + " kJ";
    else
        j = sig3(joules) + " J";
    const double wh = joules / 3600.0;
    if (std::abs(wh) >= 1000) return j + " (" + sig3(wh / 1000) + " kWh)";
    if (std::abs(wh) >= 0.01) return j + " (" + sig3(wh) + " Wh)";
    return j;
}

std::string pue_note(const std::optional<double>& pue) {
    if (!pue || !std::isfinite(*pue)) return "incl. PUE";
    return fmt::format("incl. PUE {:.3g}", *pue);
}

std::string format_co2e(double grams) {
    if (!std::isfinite(grams)) return "not recorded";
    const double a = std::abs(grams);
    if (a >= 1e6) return sig3(grams / 1e6) + " t CO2e";
    if (a >= 1e3) return sig3(grams / 1e3) + " kg CO2e";
    if (a >= 1 || a == 0) return sig3(grams) + " g CO2e";
    return sig3(grams * 1e3) + " mg CO2e";
}

std::string render_report_html(const std::vector<RunData>& runs, const ReportOptions& options) {
    bool co2e_shown = false;
    std::string names;
    for (const auto& r : runs) names += (names.empty() ? "" : ", ") + r.name;
    std::string body;
    body +=
        fmt::format("<h1>{}</h1>\n<p class=\"lead\">{} run{}: {}</p>\n", escape_xml(options.title),
                    runs.size(), runs.size() == 1 ? "" : "s", escape_xml(names));
    body += "<div class=\"runs\">\n";
    for (size_t r = 0; r < runs.size(); ++r) body += run_card(runs[r], r, co2e_shown);
    body += "</div>\n";
    body += "<h2 class=\"section\" id=\"compare\">Comparison</h2>\n";
    body += comparison_table(runs);
    if (runs.size() >= 2) {
        body += "<h2 class=\"section\" id=\"figure1\">Quality against emissions</h2>\n";
        body += figure1(runs, co2e_shown);
    }
    body += "<h2 class=\"section\" id=\"curves\">Training curves</h2>\n<div class=\"plots\">\n";
    // Plots without data are named once below the grid instead of leaving empty frames.
    std::vector<std::string> not_recorded;
    auto add = [&](const std::optional<std::string>& fig, const char* what) {
        if (fig)
            body += *fig;
        else
            not_recorded.push_back(what);
    };
    add(loss_plot(runs), "loss");
    add(hellaswag_plot(runs), "HellaSwag accuracy");
    add(throughput_plot(runs), "throughput (tokens/s)");
    add(energy_plot(runs, false), "energy over time");
    const auto co2e = energy_plot(runs, true);
    co2e_shown = co2e_shown || co2e.has_value();
    add(co2e, "CO2e over time");
    body += "</div>\n";
    if (!not_recorded.empty()) {
        std::string list;
        for (const auto& w : not_recorded) list += (list.empty() ? "" : ", ") + w;
        body += fmt::format(
            "<p class=\"missing plot-missing\">Not recorded in {}, so not plotted: "
            "{}.</p>\n",
            runs.size() == 1 ? "this run" : "any of these runs", escape_xml(list));
    }
    std::string moe;
    const auto dropped = moe_step_plot(runs, true), load_cv = moe_step_plot(runs, false);
    if (dropped || load_cv) {
        moe += "<div class=\"plots\">\n";
        if (dropped) moe += *dropped;
        if (load_cv) moe += *load_cv;
        moe += "</div>\n";
    }
    for (size_t r = 0; r < runs.size(); ++r) moe += load_section(runs[r], r, options);
    if (!moe.empty()) {
        body += "<h2 class=\"section\" id=\"moe\">Expert load</h2>\n";
        body += moe;
    }
    body +=
        "<footer>Written by <code>greenmoe report</code>. Self-contained: no scripts, fonts "
        "or images are loaded from elsewhere.";
    if (co2e_shown) body += " CO2e: " + escape_xml(kGreenAlgorithmsCredit) + ".";
    body += "</footer>\n";

    return html_page(options.title + ": " + names, body);
}

std::string html_page(const std::string& title, const std::string& body_html) {
    std::string page;
    page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    page += fmt::format("<title>{}</title>\n", escape_xml(title));
    page += "<style>" + std::string(kStyle) + "</style>\n</head>\n";
    page += "<body data-status=\"loading\" data-errors=\"\">\n<script>" + std::string(kScript) +
            "</script>\n<main>\n" + body_html + "</main>\n</body>\n</html>\n";
    return page;
}

void write_report_html(const std::vector<RunData>& runs, const std::filesystem::path& path,
                       const ReportOptions& options) {
    write_file_atomic(path, render_report_html(runs, options));
}

}  // namespace greenmoe::report

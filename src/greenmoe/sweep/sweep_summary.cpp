// A sweep's runs aggregated over seeds: per-run figures, Student t and Welch intervals, CSV
// and console table (see sweep_summary.h).
#include "greenmoe/sweep/sweep_summary.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "greenmoe/core/error.h"
#include "greenmoe/energy/csv_table.h"
#include "greenmoe/report/run_data.h"

namespace greenmoe::sweep {

namespace {

constexpr size_t kNumMetrics = std::size(kAllMetrics);

size_t index_of(Metric m) {
    return static_cast<size_t>(m);
}

// ---- Student's t distribution ------------------------------------------------------------

// The continued fraction of the regularized incomplete beta function I_x(a, b), evaluated by
// the modified Lentz method (Numerical Recipes' betacf); converges fast for
// x < (a + 1) / (a + b + 2), in about √max(a, b) terms.
double beta_continued_fraction(double a, double b, double x) {
    constexpr double kTiny = 1e-300;
    constexpr double kEps = 4 * std::numeric_limits<double>::epsilon();
    constexpr int kMaxTerms = 1000000;
    const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0;
    double d = 1.0 - qab * x / qap;
    if (std::abs(d) < kTiny) d = kTiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= kMaxTerms; ++m) {
        const double m2 = 2.0 * m;
        // Even step.
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if (std::abs(d) < kTiny) d = kTiny;
        c = 1.0 + aa / c;
        if (std::abs(c) < kTiny) c = kTiny;
        d = 1.0 / d;
        h *= d * c;
        // Odd step.
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if (std::abs(d) < kTiny) d = kTiny;
        c = 1.0 + aa / c;
        if (std::abs(c) < kTiny) c = kTiny;
        d = 1.0 / d;
        const double step = d * c;
        h *= step;
        if (std::abs(step - 1.0) <= kEps) return h;
    }
    fail("incomplete beta I_x({}, {}) at x = {}: the continued fraction did not converge", a, b, x);
}

// log B(a, b). With a large argument, lgamma(a) − lgamma(a + b) cancels to a small number
// and loses the absolute accuracy of numbers near a·log a (1e-7 at df = 1e8); Stirling's
// series for the difference keeps the quantile at about 1e-13 for any df.
double log_beta(double a, double b) {
    const double big = std::max(a, b), small = std::min(a, b);
    if (big < 100.0) return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
    // lgamma(x) = (x − ½)·log x − x + ½·log 2π + δ(x), δ(x) = Σ B₂ₖ / (2k(2k − 1)·x^(2k−1)).
    auto delta = [](double x) {
        const double r = 1.0 / x, r2 = r * r;
        return r * (1.0 / 12 - r2 * (1.0 / 360 - r2 * (1.0 / 1260 - r2 / 1680)));
    };
    // lgamma(big) − lgamma(big + small), written without the large terms that cancel.
    const double diff = -(big + small - 0.5) * std::log1p(small / big) - small * std::log(big) +
                        small + delta(big) - delta(big + small);
    return std::lgamma(small) + diff;
}

// I_x(a, b), with y = 1 − x passed separately: computed from x alone, 1 − x would lose the
// digits that matter when x is close to 1 (the centre of the t distribution).
double incomplete_beta(double a, double b, double x, double y) {
    if (x <= 0.0) return 0.0;
    if (y <= 0.0) return 1.0;
    const double log_x = x < 0.5 ? std::log(x) : std::log1p(-y);
    const double log_y = y < 0.5 ? std::log(y) : std::log1p(-x);
    const double front = std::exp(a * log_x + b * log_y - log_beta(a, b));
    if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(a, b, x) / a;
    return 1.0 - front * beta_continued_fraction(b, a, y) / b;
}

double student_t_density(double t, double df) {
    const double log_norm = -log_beta(0.5 * df, 0.5) - 0.5 * std::log(df);
    return std::exp(log_norm - 0.5 * (df + 1.0) * std::log1p(t / df * t));
}

// ---- aggregation ---------------------------------------------------------------------

double mean_of(const std::vector<double>& v) {
    double sum = 0.0;
    for (double x : v) sum += x;
    return sum / static_cast<double>(v.size());
}

// Sample variance (n − 1 denominator), two-pass; 0 for one value.
double variance_of(const std::vector<double>& v, double mean) {
    if (v.size() < 2) return 0.0;
    double ss = 0.0;
    for (double x : v) ss += (x - mean) * (x - mean);
    return ss / static_cast<double>(v.size() - 1);
}

std::optional<double> finite(std::optional<double> v) {
    if (v && !std::isfinite(*v)) return std::nullopt;
    return v;
}

RunFigures figures_of(const report::RunData& run) {
    const report::RunTotals t = report::run_totals(run);
    RunFigures f;
    f.name = run.name;
    f.metrics.assign(kNumMetrics, std::nullopt);
    auto set = [&](Metric m, std::optional<double> v) { f.metrics[index_of(m)] = finite(v); };
    set(Metric::ValLoss, t.final_val_loss);
    // greenmoe's own acc_norm (the ending with the best length-normalised log-likelihood, as
    // the report's "HellaSwag acc_norm" column), not lm-eval's harness_acc_norm.
    if (t.last_eval) set(Metric::HellaSwagAccNorm, t.last_eval->acc_norm);
    if (t.energy_j) set(Metric::Kwh, *t.energy_j / 3.6e6);
    set(Metric::Gco2e, t.co2e_g);
    if (t.tokens && t.train_seconds && *t.train_seconds > 0.0)
        set(Metric::TokensPerSecond, static_cast<double>(*t.tokens) / *t.train_seconds);
    set(Metric::JoulesPerToken, t.j_per_token);
    // The routing statistics of the last logged step: the state training ended in.
    for (auto it = run.train.rbegin(); it != run.train.rend(); ++it) {
        if (it->moe.empty()) continue;
        double cv_sum = 0.0, dropped_sum = 0.0;
        int cv_layers = 0, dropped_layers = 0;
        for (const report::MoeLayerLoad& layer : it->moe) {
            if (layer.load_cv && std::isfinite(*layer.load_cv)) {
                cv_sum += *layer.load_cv;
                ++cv_layers;
            }
            // The trainer logs "dropped" as a fraction of the layer's token choices.
            if (layer.dropped && std::isfinite(*layer.dropped)) {
                dropped_sum += *layer.dropped;
                ++dropped_layers;
            }
        }
        if (cv_layers > 0) set(Metric::LoadCv, cv_sum / cv_layers);
        if (dropped_layers > 0) set(Metric::DroppedPct, 100.0 * dropped_sum / dropped_layers);
        break;
    }
    return f;
}

// ---- formatting -----------------------------------------------------------------------

// Shortest text that reads back as the same double.
std::string number_text(double v) {
    return fmt::format("{}", v);
}

// Columns of the console table are padded by characters shown, not bytes ("±" is two).
size_t display_width(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

std::string pad(const std::string& s, size_t width) {
    const size_t w = display_width(s);
    return w >= width ? s : s + std::string(width - w, ' ');
}

// "5.23 ± 0.38": the half width to two significant digits and the mean to the same decimal
// place; the mean alone (4 significant digits) when there is no interval.
std::string estimate_text(const Estimate& e, bool signed_mean) {
    auto mean_text = [&](int decimals) {
        if (decimals < 0)
            return signed_mean ? fmt::format("{:+.4g}", e.mean) : fmt::format("{:.4g}", e.mean);
        return signed_mean ? fmt::format("{:+.{}f}", e.mean, decimals)
                           : fmt::format("{:.{}f}", e.mean, decimals);
    };
    if (!e.half_width) return mean_text(-1);
    const double hw = *e.half_width;
    if (!(hw > 0.0) || !std::isfinite(hw)) return fmt::format("{} ± {}", mean_text(-1), hw);
    const int decimals = std::clamp(1 - static_cast<int>(std::floor(std::log10(hw))), 0, 12);
    return fmt::format("{} ± {:.{}f}", mean_text(decimals), hw, decimals);
}

// Rows of cells printed with columns as wide as their widest cell, two spaces apart.
std::string table_text(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> widths;
    for (const auto& row : rows) {
        if (widths.size() < row.size()) widths.resize(row.size(), 0);
        for (size_t c = 0; c < row.size(); ++c)
            widths[c] = std::max(widths[c], display_width(row[c]));
    }
    std::string out;
    for (const auto& row : rows) {
        std::string line;
        for (size_t c = 0; c < row.size(); ++c) {
            if (c > 0) line += "  ";
            line += c + 1 < row.size() ? pad(row[c], widths[c]) : row[c];
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}

}  // namespace

std::string metric_id(Metric m) {
    switch (m) {
        case Metric::ValLoss:
            return "val_loss";
        case Metric::HellaSwagAccNorm:
            return "hellaswag_acc_norm";
        case Metric::Kwh:
            return "kwh";
        case Metric::Gco2e:
            return "gco2e";
        case Metric::TokensPerSecond:
            return "tokens_per_s";
        case Metric::JoulesPerToken:
            return "j_per_token";
        case Metric::LoadCv:
            return "load_cv";
        case Metric::DroppedPct:
            return "dropped_pct";
    }
    fail("unknown sweep metric {}", static_cast<int>(m));
}

std::string metric_label(Metric m) {
    switch (m) {
        case Metric::ValLoss:
            return "val loss";
        case Metric::HellaSwagAccNorm:
            return "HellaSwag acc_norm";
        case Metric::Kwh:
            return "kWh";
        case Metric::Gco2e:
            return "g CO2e";
        case Metric::TokensPerSecond:
            return "tokens/s";
        case Metric::JoulesPerToken:
            return "J/token";
        case Metric::LoadCv:
            return "load CV";
        case Metric::DroppedPct:
            return "dropped %";
    }
    fail("unknown sweep metric {}", static_cast<int>(m));
}

double student_t_quantile(double p, double df) {
    check(p > 0.0 && p < 1.0, "Student t quantile: p must lie in (0, 1), got {}", p);
    check(df > 0.0 && std::isfinite(df),
          "Student t quantile: degrees of freedom must be a finite number > 0, got {}", df);
    if (p == 0.5) return 0.0;
    // Solve for t > 0 on the side that keeps the target accurate: near the median the mass
    // between 0 and t, P(0 < T < t) = I_y(1/2, df/2) / 2, with target |p − 0.5| (exact for
    // p in [0.25, 0.75]); further out the tail P(T > t) = I_x(df/2, 1/2) / 2 with target
    // min(p, 1 − p) (exact), so that 1e-300 is as good a target as 0.1. Here
    // x = df / (df + t²) and y = t² / (df + t²), both computed directly.
    const bool central = p >= 0.25 && p <= 0.75;
    const double target = central ? std::abs(p - 0.5) : std::min(p, 1.0 - p);
    const double a = 0.5 * df;
    const double sqrt_df = std::sqrt(df);
    // f increases with t and is 0 at the quantile.
    auto f = [&](double t) {
        const double u = t / sqrt_df;
        if (u >= 1e150) {
            // u² would overflow and x = 1/u² underflow: the tail is the first term of its
            // series, x^a / (a·B(a, ½)), exact to double precision for x < 1e-300.
            const double tail = 0.5 * std::exp(-2.0 * a * std::log(u) - log_beta(a, 0.5)) / a;
            return central ? 0.5 - tail - target : target - tail;
        }
        const double x = 1.0 / (1.0 + u * u), y = u * u / (1.0 + u * u);
        return central ? 0.5 * incomplete_beta(0.5, a, y, x) - target
                       : target - 0.5 * incomplete_beta(a, 0.5, x, y);
    };
    // Bracket the root in [lo, hi], doubling: heavy tails (df = 1, p = 1e-6: t ≈ 3.2e5) take
    // a few dozen doublings, at most about a thousand; a quantile beyond 1e300 (tiny df, far
    // tails) is returned as infinity.
    double lo = 0.0, hi = 1.0;
    while (f(hi) < 0.0) {
        lo = hi;
        hi *= 2.0;
        if (hi > 1e300)
            return p > 0.5 ? std::numeric_limits<double>::infinity()
                           : -std::numeric_limits<double>::infinity();
    }
    // Newton on the bracket (f' is the density), bisecting whenever a step leaves it.
    double t = 0.5 * (lo + hi);
    for (int iter = 0; iter < 400; ++iter) {
        const double value = f(t);
        if (value == 0.0) break;
        if (value < 0.0)
            lo = t;
        else
            hi = t;
        const double slope = student_t_density(t, df);
        double next = slope > 0.0 ? t - value / slope : lo;
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
        const bool converged = std::abs(next - t) <= 1e-15 * t || hi - lo <= 1e-15 * hi;
        t = next;
        if (converged) break;
    }
    return p > 0.5 ? t : -t;
}

Estimate estimate_mean(const std::vector<double>& values) {
    check(!values.empty(), "sweep summary: a mean needs at least one value");
    Estimate e;
    e.n = static_cast<int>(values.size());
    e.mean = mean_of(values);
    if (e.n >= 2) {
        const double s = std::sqrt(variance_of(values, e.mean));
        e.half_width = student_t_quantile(0.975, e.n - 1.0) * s / std::sqrt(double(e.n));
    }
    return e;
}

Estimate estimate_difference(const std::vector<double>& values,
                             const std::vector<double>& baseline) {
    check(!values.empty() && !baseline.empty(),
          "sweep summary: a difference needs at least one value on each side");
    const double m1 = mean_of(values), m2 = mean_of(baseline);
    Estimate e;
    e.n = static_cast<int>(std::min(values.size(), baseline.size()));
    e.mean = m1 - m2;
    if (values.size() < 2 || baseline.size() < 2) return e;
    const double n1 = double(values.size()), n2 = double(baseline.size());
    const double v1 = variance_of(values, m1) / n1, v2 = variance_of(baseline, m2) / n2;
    const double se = std::sqrt(v1 + v2);
    if (se == 0.0) {
        // Every seed gave the same value on both sides: nothing varies, the difference is
        // exact (and Welch's df, 0/0, is undefined).
        e.half_width = 0.0;
        return e;
    }
    const double df = (v1 + v2) * (v1 + v2) / (v1 * v1 / (n1 - 1.0) + v2 * v2 / (n2 - 1.0));
    e.half_width = student_t_quantile(0.975, df) * se;
    return e;
}

RunFigures run_figures(const std::filesystem::path& run_folder) {
    return figures_of(report::read_run(run_folder));
}

SweepSummary summarize_sweep(const std::filesystem::path& dir) {
    const SweepState state = read_sweep_state(dir);
    SweepSummary summary;
    summary.baseline = state.baseline;
    summary.axes = state.axes;
    std::map<std::string, size_t> index;  // setting → position in summary.settings
    for (const SweepRunState& r : state.runs) {
        auto [it, added] = index.emplace(r.setting, summary.settings.size());
        if (added) {
            SettingSummary s;
            s.setting = r.setting;
            s.values = r.values;
            summary.settings.push_back(std::move(s));
        }
        SettingSummary& s = summary.settings[it->second];
        if (r.status == "failed") {
            ++s.runs_failed;
            continue;
        }
        if (r.status != "done") {
            ++s.runs_unfinished;
            continue;
        }
        // "done" in sweep.json but the run's own log does not say so (a folder removed or
        // replaced since): not counted as finished.
        std::error_code ec;
        const std::filesystem::path folder = dir / r.name;
        if (!std::filesystem::is_regular_file(folder / "log.jsonl", ec)) {
            ++s.runs_unfinished;
            continue;
        }
        const report::RunData run = report::read_run(folder);
        if (!run.done) {
            ++s.runs_unfinished;
            continue;
        }
        RunFigures figures = figures_of(run);
        figures.name = r.name;
        figures.seed = r.seed;
        s.runs.push_back(std::move(figures));
        ++s.runs_done;
    }

    auto values_of = [](const SettingSummary& s, size_t m) {
        std::vector<double> v;
        for (const RunFigures& r : s.runs)
            if (r.metrics[m]) v.push_back(*r.metrics[m]);
        return v;
    };
    const SettingSummary* baseline = nullptr;
    for (const SettingSummary& s : summary.settings)
        if (!summary.baseline.empty() && s.setting == summary.baseline) baseline = &s;
    for (SettingSummary& s : summary.settings) {
        s.metrics.assign(kNumMetrics, std::nullopt);
        for (size_t m = 0; m < kNumMetrics; ++m) {
            const std::vector<double> v = values_of(s, m);
            if (!v.empty()) s.metrics[m] = estimate_mean(v);
        }
    }
    for (SettingSummary& s : summary.settings) {
        s.diff_from_baseline.assign(kNumMetrics, std::nullopt);
        if (!baseline || &s == baseline) continue;
        for (size_t m = 0; m < kNumMetrics; ++m) {
            const std::vector<double> v = values_of(s, m), b = values_of(*baseline, m);
            if (!v.empty() && !b.empty()) s.diff_from_baseline[m] = estimate_difference(v, b);
        }
    }
    return summary;
}

std::string summary_csv(const SweepSummary& summary) {
    std::vector<std::string> header = {"setting"};
    for (const std::string& axis : summary.axes) header.push_back(axis);
    header.push_back("runs");
    header.push_back("failed");
    for (Metric m : kAllMetrics) {
        const std::string id = metric_id(m);
        for (const char* suffix : {"_mean", "_ci95", "_diff", "_diff_ci95"})
            header.push_back(fmt::format("{}{}", id, suffix));
    }
    auto line = [](const std::vector<std::string>& fields) {
        std::string out;
        for (size_t i = 0; i < fields.size(); ++i) {
            if (i > 0) out += ',';
            out += csv_field(fields[i]);
        }
        return out + "\n";
    };
    std::string out = line(header);
    for (const SettingSummary& s : summary.settings) {
        std::vector<std::string> row = {s.setting};
        for (const std::string& axis : summary.axes) {
            std::string value;
            for (const auto& [key, label] : s.values)
                if (key == axis) value = label;
            row.push_back(value);
        }
        row.push_back(std::to_string(s.runs_done));
        row.push_back(std::to_string(s.runs_failed));
        for (size_t m = 0; m < kNumMetrics; ++m) {
            const auto& e = m < s.metrics.size() ? s.metrics[m] : std::nullopt;
            const auto& d =
                m < s.diff_from_baseline.size() ? s.diff_from_baseline[m] : std::nullopt;
            row.push_back(e ? number_text(e->mean) : "");
            row.push_back(e && e->half_width ? number_text(*e->half_width) : "");
            row.push_back(d ? number_text(d->mean) : "");
            row.push_back(d && d->half_width ? number_text(*d->half_width) : "");
        }
        out += line(row);
    }
    return out;
}

std::string summary_table(const SweepSummary& summary) {
    // Only the metrics some setting has (an all-dense grid has no load CV).
    std::vector<size_t> shown;
    for (size_t m = 0; m < kNumMetrics; ++m) {
        for (const SettingSummary& s : summary.settings) {
            if (m < s.metrics.size() && s.metrics[m]) {
                shown.push_back(m);
                break;
            }
        }
    }
    bool any_failed = false, any_unfinished = false;
    for (const SettingSummary& s : summary.settings) {
        any_failed |= s.runs_failed > 0;
        any_unfinished |= s.runs_unfinished > 0;
    }
    std::string out = fmt::format(
        "{} setting{}; mean ± half width of the 95 % interval over seeds (Student t; none "
        "for one seed)\n",
        summary.settings.size(), summary.settings.size() == 1 ? "" : "s");
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> head = {"setting", "seeds"};
    if (any_failed) head.push_back("failed");
    if (any_unfinished) head.push_back("unfinished");
    for (size_t m : shown) head.push_back(metric_label(kAllMetrics[m]));
    rows.push_back(head);
    for (const SettingSummary& s : summary.settings) {
        std::vector<std::string> row = {s.setting, std::to_string(s.runs_done)};
        if (any_failed) row.push_back(std::to_string(s.runs_failed));
        if (any_unfinished) row.push_back(std::to_string(s.runs_unfinished));
        for (size_t m : shown)
            row.push_back(m < s.metrics.size() && s.metrics[m] ? estimate_text(*s.metrics[m], false)
                                                               : "-");
        rows.push_back(std::move(row));
    }
    out += table_text(rows);

    const bool has_baseline =
        std::any_of(summary.settings.begin(), summary.settings.end(),
                    [&](const SettingSummary& s) { return s.setting == summary.baseline; });
    if (summary.baseline.empty()) return out;
    if (!has_baseline) {
        out += fmt::format("\nbaseline {} has no runs in this sweep: no differences\n",
                           summary.baseline);
        return out;
    }
    out += fmt::format("\ndifference from baseline ({}); ± half width of Welch's 95 % interval\n",
                       summary.baseline);
    rows.clear();
    head = {"setting"};
    for (size_t m : shown) head.push_back(metric_label(kAllMetrics[m]));
    rows.push_back(head);
    for (const SettingSummary& s : summary.settings) {
        if (s.setting == summary.baseline) continue;
        std::vector<std::string> row = {s.setting};
        for (size_t m : shown)
            row.push_back(m < s.diff_from_baseline.size() && s.diff_from_baseline[m]
                              ? estimate_text(*s.diff_from_baseline[m], true)
                              : "-");
        rows.push_back(std::move(row));
    }
    out += table_text(rows);
    return out;
}

}  // namespace greenmoe::sweep

// The SVG plotting layer (see svg_plot.h).
#include "greenmoe/report/svg_plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <utility>

#include <fmt/format.h>

namespace greenmoe::report {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kCharWidth = 6.6;  // rough width of one 12 px sans-serif character
constexpr int kFontSize = 12;
constexpr const char* kAxisColor = "#444";
constexpr const char* kGridColor = "#e4e4e4";
constexpr const char* kTextColor = "#222";
constexpr double kMaxFinite = std::numeric_limits<double>::max();
// Values this close together (relative to their size) are drawn as one flat line: a plot
// cannot show the difference, and ticks closer than that would repeat the same label.
constexpr double kFlatRelative = 1e-9;

// A tick past the double range (k · step beyond DBL_MAX) is pinned to its end.
double saturate(double v) {
    return std::clamp(v, -kMaxFinite, kMaxFinite);
}

// The 1-2-5 value nearest above `raw` (> 0, finite): 1, 2 or 5 times a power of ten.
double nice_raw_step(double raw) {
    if (!(raw > 0) || !std::isfinite(raw)) return 1.0;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / mag;
    const double nf = f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0;
    return saturate(nf * mag);
}

// Rough rendered width of a label: no font metrics in here, so count UTF-8 characters.
double text_width(std::string_view s, double char_width = kCharWidth) {
    size_t chars = 0;
    for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
    return static_cast<double>(chars) * char_width;
}

std::string px(double v) {
    return fmt::format("{:.1f}", v);
}

// Four significant digits, for tooltips.
std::string short_number(double v) {
    if (!std::isfinite(v)) return format_number(v);
    return fmt::format("{:.4g}", v);
}

bool usable(double v, bool log) {
    return std::isfinite(v) && (!log || v > 0);
}

struct Range {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    void add(double v) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    bool empty() const { return lo > hi; }
};

// Range of an axis from its data and forced ends, then ticks that enclose it.
Ticks axis_ticks(Range r, const Axis& axis, int target) {
    if (std::isfinite(axis.min) && (!axis.log || axis.min > 0)) r.add(axis.min);
    if (std::isfinite(axis.max) && (!axis.log || axis.max > 0)) r.add(axis.max);
    if (r.empty()) r = axis.log ? Range{1.0, 10.0} : Range{0.0, 1.0};
    return axis.log ? log_ticks(r.lo, r.hi) : nice_ticks(r.lo, r.hi, target);
}

std::string tick_label(const Axis& axis, double v, const Ticks& t) {
    double axis_max = 0;
    for (double x : t.values) axis_max = std::max(axis_max, std::abs(x));
    return axis.log ? format_log_tick(v) : format_tick(v, t.step, axis_max);
}

// The frame shared by line and scatter plots: title, grid, ticks, axis labels.
struct Frame {
    double left = 0, top = 0, right = 0, bottom = 0;  // plot area in px
    Ticks xt, yt;
};

void open_svg(std::string& out, const std::string& id, const std::string& cls, int width,
              int height, const std::string& title) {
    out += fmt::format(
        "<svg class=\"{}\"{} width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" "
        "aria-label=\"{}\" font-family=\"sans-serif\" font-size=\"{}\">\n",
        cls, id.empty() ? "" : fmt::format(" id=\"{}\"", escape_xml(id)), width, height, width,
        height, escape_xml(title), kFontSize);
    out += fmt::format("<rect class=\"bg\" width=\"{}\" height=\"{}\" fill=\"#fff\"/>\n", width,
                       height);
    if (!title.empty()) {
        out += fmt::format(
            "<text class=\"title\" x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" "
            "font-weight=\"bold\" fill=\"{}\">{}</text>\n",
            px(width / 2.0), kTextColor, escape_xml(title));
    }
}

void draw_frame(std::string& out, const Frame& f, const Scale& sx, const Scale& sy, const Axis& ax,
                const Axis& ay) {
    out += "<g class=\"axes\">\n";
    for (double v : f.yt.values) {
        const double y = sy.map(v);
        out += fmt::format(
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\"/>"
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{}\">{}</text>\n",
            px(f.left), px(y), px(f.right), px(y), kGridColor, px(f.left - 6), px(y + 4),
            kTextColor, escape_xml(tick_label(ay, v, f.yt)));
    }
    for (double v : f.xt.values) {
        const double x = sx.map(v);
        out += fmt::format(
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\"/>"
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">{}</text>\n",
            px(x), px(f.top), px(x), px(f.bottom), kGridColor, px(x), px(f.bottom + 16), kTextColor,
            escape_xml(tick_label(ax, v, f.xt)));
    }
    out += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"{}\"/>\n",
        px(f.left), px(f.top), px(f.right - f.left), px(f.bottom - f.top), kAxisColor);
    if (!ax.label.empty()) {
        out += fmt::format(
            "<text class=\"xlabel\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">{}{}"
            "</text>\n",
            px((f.left + f.right) / 2), px(f.bottom + 34), kTextColor, escape_xml(ax.label),
            ax.log ? " (log scale)" : "");
    }
    if (!ay.label.empty()) {
        const double cy = (f.top + f.bottom) / 2;
        out += fmt::format(
            "<text class=\"ylabel\" x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" "
            "text-anchor=\"middle\" fill=\"{}\">{}{}</text>\n",
            px(cy), px(cy), kTextColor, escape_xml(ay.label), ay.log ? " (log scale)" : "");
    }
    out += "</g>\n";
}

// Left margin wide enough for the longest y tick label.
double left_margin(const Axis& ay, const Ticks& yt) {
    double w = 0;
    for (double v : yt.values) w = std::max(w, text_width(tick_label(ay, v, yt)));
    return std::max(48.0, w + 30.0);
}

void empty_note(std::string& out, const Frame& f, const std::string& text) {
    out += fmt::format(
        "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">{}</text>\n",
        px((f.left + f.right) / 2), px((f.top + f.bottom) / 2), escape_xml(text));
}

void draw_references(std::string& out, const Frame& f, const Scale& sy,
                     const std::vector<ReferenceLine>& refs, bool log) {
    for (const auto& r : refs) {
        if (!usable(r.y, log)) continue;
        const double y = sy.map(r.y);
        out += fmt::format(
            "<g class=\"ref\"><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\" "
            "stroke-dasharray=\"2 3\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\" "
            "font-size=\"10\" fill=\"#777\">{}</text></g>\n",
            px(f.left), px(y), px(f.right), px(y), px(f.right - 4), px(y - 4), escape_xml(r.label));
    }
}

std::string clip_attr(std::string& out, const std::string& id, const Frame& f) {
    if (id.empty()) return "";
    const std::string clip = escape_xml(id) + "-clip";
    // Markers sit on the plot edge when a value equals an axis end: a few px of slack.
    out += fmt::format(
        "<clipPath id=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>\n",
        clip, px(f.left - 5), px(f.top - 5), px(f.right - f.left + 10), px(f.bottom - f.top + 10));
    return fmt::format(" clip-path=\"url(#{})\"", clip);
}

struct LegendItem {
    std::string name, color;
    bool dashed = false, line = true;
};

// Legend entries flowing left to right in rows under the plot; returns its height.
double legend_height(const std::vector<LegendItem>& items, double width) {
    if (items.empty()) return 0;
    double x = 0, rows = 1;
    for (const auto& it : items) {
        const double w = 30 + text_width(it.name) + 16;
        if (x > 0 && x + w > width) {
            rows += 1;
            x = 0;
        }
        x += w;
    }
    return rows * 18 + 4;
}

void draw_legend(std::string& out, const std::vector<LegendItem>& items, double left, double top,
                 double width) {
    out += "<g class=\"legend\">\n";
    double x = 0, y = top + 12;
    for (const auto& it : items) {
        const double w = 30 + text_width(it.name) + 16;
        if (x > 0 && x + w > width) {
            y += 18;
            x = 0;
        }
        const double lx = left + x;
        if (it.line) {
            out += fmt::format(
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
                "stroke-width=\"2\"{}/>",
                px(lx), px(y - 4), px(lx + 24), px(y - 4), it.color,
                it.dashed ? " stroke-dasharray=\"6 4\"" : "");
        }
        out += fmt::format(
            "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"/>"
            "<text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>\n",
            px(lx + 12), px(y - 4), it.color, px(lx + 30), px(y), kTextColor, escape_xml(it.name));
        x += w;
    }
    out += "</g>\n";
}

// What the legend says about a series' points that are not drawn: NaN / ±inf values
// (gaps in the line) and, on a log axis, values ≤ 0. Empty when every point is drawn.
std::string left_out_note(const Series& s, bool x_log, bool y_log) {
    size_t not_finite = 0, not_positive = 0;
    const size_t n = std::min(s.x.size(), s.y.size());
    for (size_t k = 0; k < n; ++k) {
        if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k]))
            ++not_finite;
        else if ((x_log && !(s.x[k] > 0)) || (y_log && !(s.y[k] > 0)))
            ++not_positive;
    }
    std::string note;
    if (not_finite > 0)
        note = fmt::format("{} NaN/inf point{}: gaps", not_finite, not_finite == 1 ? "" : "s");
    if (not_positive > 0) {
        note += fmt::format("{}{} point{} ≤ 0 off the log scale", note.empty() ? "" : ", ",
                            not_positive, not_positive == 1 ? "" : "s");
    }
    return note;
}

struct Rgb {
    double r, g, b;
};

}  // namespace

std::string escape_xml(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            switch (c) {
                case '&':
                    out += "&amp;";
                    break;
                case '<':
                    out += "&lt;";
                    break;
                case '>':
                    out += "&gt;";
                    break;
                case '"':
                    out += "&quot;";
                    break;
                case '\'':
                    out += "&#39;";
                    break;
                default:
                    // XML 1.0 forbids most C0 controls even as character references.
                    if (c >= 0x20 || c == '\t' || c == '\n')
                        out += static_cast<char>(c);
                    else if (c == '\r')
                        out += '\n';
            }
            ++i;
            continue;
        }
        // A well-formed UTF-8 sequence (no overlongs, surrogates or > U+10FFFF) is kept.
        int len = 0;
        uint32_t cp = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        }
        bool ok = len > 0 && i + len <= text.size();
        for (int k = 1; ok && k < len; ++k) {
            const unsigned char cc = static_cast<unsigned char>(text[i + k]);
            ok = (cc & 0xC0) == 0x80;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (ok) {
            ok = (len == 3 && cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) ||
                 (len == 4 && cp >= 0x10000 && cp <= 0x10FFFF) || len == 2;
        }
        if (ok) {
            out.append(text.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

std::string format_number(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    return fmt::format("{}", v);
}

double nice_step(double range, int target) {
    if (!(range > 0) || !std::isfinite(range)) return 1.0;
    return nice_raw_step(range / std::max(1, target));
}

Ticks nice_ticks(double lo, double hi, int target) {
    if (!std::isfinite(lo) || !std::isfinite(hi)) {
        lo = 0.0;
        hi = 1.0;
    }
    if (hi < lo) std::swap(lo, hi);
    target = std::max(1, target);
    const double magnitude = std::max(std::abs(lo), std::abs(hi));
    // Halves, so that the span of ±1e308 does not overflow.
    if (hi / 2 - lo / 2 <= magnitude * kFlatRelative) {
        // A flat series (or one flat within rounding) still needs an axis: widen by 10 % of
        // the value (or 1 around 0). Saturating keeps the ends finite next to DBL_MAX.
        const double pad = magnitude == 0.0 ? 1.0 : magnitude * 0.1;
        lo = std::max(lo - pad, -kMaxFinite);
        hi = std::min(hi + pad, kMaxFinite);
    }
    Ticks t;
    t.step = nice_raw_step(hi / target - lo / target);
    // The tolerance is in steps, so that 0.30000000000000004 does not add a tick past 0.3
    // whatever the magnitude. lo / step stays below ~1e10 (the range is at least
    // kFlatRelative of the magnitude), so the tick indices fit an int64.
    constexpr double kTol = 1e-9;
    const auto first = static_cast<int64_t>(std::floor(lo / t.step + kTol));
    const auto last = static_cast<int64_t>(std::ceil(hi / t.step - kTol));
    for (int64_t k = first; k <= last; ++k) {
        const double v = static_cast<double>(k) * t.step;
        t.values.push_back(k == 0 ? 0.0 : saturate(v));
    }
    if (t.values.size() < 2) t.values = {saturate(lo), saturate(hi)};
    return t;
}

Ticks log_ticks(double lo, double hi) {
    if (!(lo > 0) || !std::isfinite(lo)) lo = 1.0;
    if (!(hi > 0) || !std::isfinite(hi)) hi = lo * 10;
    if (hi < lo) std::swap(lo, hi);
    const double eps = 1e-9;
    const int d0 = static_cast<int>(std::floor(std::log10(lo) + eps));
    int d1 = static_cast<int>(std::ceil(std::log10(hi) - eps));
    if (d1 <= d0) d1 = d0 + 1;
    // Powers of ten past the double range are clamped to its ends (which stay > 0).
    auto power = [](int d, double m = 1.0) {
        return std::clamp(m * std::pow(10.0, d), std::numeric_limits<double>::denorm_min(),
                          kMaxFinite);
    };
    Ticks t;
    if (d1 - d0 <= 2) {
        // All 1-2-5 values of the decades, trimmed to the last one ≤ lo and the first ≥ hi.
        std::vector<double> all;
        for (int d = d0; d <= d1; ++d) {
            for (double m : {1.0, 2.0, 5.0}) all.push_back(power(d, m));
        }
        // Clamping can repeat DBL_MAX at the top.
        all.erase(std::unique(all.begin(), all.end()), all.end());
        size_t a = 0, b = all.size() - 1;
        while (a + 1 < all.size() && all[a + 1] / (1 + eps) <= lo) ++a;
        while (b > 0 && all[b - 1] >= hi * (1 - eps)) --b;
        if (b <= a) b = std::min(a + 1, all.size() - 1);
        t.values.assign(all.begin() + static_cast<std::ptrdiff_t>(a),
                        all.begin() + static_cast<std::ptrdiff_t>(b) + 1);
        // Only at the top of the double range is there no second tick: a decade below.
        if (t.values.size() < 2) t.values = {std::min(lo, t.values.back() / 10), t.values.back()};
        t.step = 0.0;
        return t;
    }
    const int k = (d1 - d0 + 7) / 8;  // at most ~8 labelled decades
    const int start = static_cast<int>(std::floor(static_cast<double>(d0) / k)) * k;
    int end = static_cast<int>(std::ceil(static_cast<double>(d1) / k)) * k;
    for (int d = start; d <= end; d += k) t.values.push_back(power(d));
    t.values.erase(std::unique(t.values.begin(), t.values.end()), t.values.end());
    t.step = k;
    return t;
}

std::string format_tick(double v, double step, double axis_max) {
    if (!std::isfinite(v)) return format_number(v);
    if (std::abs(v) < std::abs(step) * 1e-6) return "0";
    const double big = std::max(std::abs(v), std::abs(axis_max));
    // Past 1000G or below 0.0001, fixed notation would print dozens of digits: scientific,
    // with as many decimals as tell neighbouring ticks apart.
    if (big >= 1e12 || big < 1e-4) {
        const double digits =
            std::floor(std::log10(big)) - (step > 0 ? std::floor(std::log10(std::abs(step))) : 0.0);
        const int decimals = static_cast<int>(std::clamp(digits, 0.0, 12.0));
        return fmt::format("{:.{}e}", v, decimals);
    }
    static constexpr std::array<std::pair<double, const char*>, 3> kSuffixes{
        {{1e9, "G"}, {1e6, "M"}, {1e3, "k"}}};
    double scale = 1.0;
    const char* suffix = "";
    // The suffix follows the axis's largest tick, so that one axis never mixes 5000 and 10k.
    for (const auto& [s, name] : kSuffixes) {
        if (big >= 10 * s || (s >= 1e6 && big >= s)) {
            scale = s;
            suffix = name;
            break;
        }
    }
    const double scaled_step = std::abs(step) / scale;
    int decimals = 0;
    if (scaled_step > 0 && scaled_step < 1)
        decimals = std::min(12, static_cast<int>(std::ceil(-std::log10(scaled_step) - 1e-9)));
    return fmt::format("{:.{}f}{}", v / scale, decimals, suffix);
}

std::string format_log_tick(double v) {
    if (!(v > 0) || !std::isfinite(v)) return format_number(v);
    if (v >= 1e12) return fmt::format("{:.3g}", v);
    if (v >= 1e9) return fmt::format("{:g}G", v / 1e9);
    if (v >= 1e6) return fmt::format("{:g}M", v / 1e6);
    if (v >= 1e4) return fmt::format("{:g}k", v / 1e3);
    if (v >= 1e-4) return fmt::format("{:g}", v);
    return fmt::format("{:.0e}", v);
}

Scale::Scale(double domain_lo, double domain_hi, double pixel_lo, double pixel_hi, bool log)
    : lo_(domain_lo), hi_(domain_hi), p_lo_(pixel_lo), p_hi_(pixel_hi), log_(log) {
    if (log_) {
        lo_ = std::log10(lo_);
        hi_ = std::log10(hi_);
    }
}

double Scale::map(double v) const {
    if (log_) {
        if (!(v > 0)) return kNaN;
        v = std::log10(v);
    }
    if (!std::isfinite(v)) return kNaN;
    // Halves, so that a domain spanning ±1e308 does not overflow to inf.
    const double span = hi_ / 2 - lo_ / 2;
    if (span == 0) return (p_lo_ + p_hi_) / 2;
    return p_lo_ + (v / 2 - lo_ / 2) / span * (p_hi_ - p_lo_);
}

const std::string& palette_color(size_t index) {
    // Okabe & Ito's colour-blind-safe set (yellow left out: unreadable on white).
    static const std::array<std::string, 8> kPalette{"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                     "#E69F00", "#56B4E9", "#7F3C8D", "#555555"};
    return kPalette[index % kPalette.size()];
}

std::string sequential_color(double t) {
    // Five stops of matplotlib's viridis, interpolated in sRGB.
    static constexpr std::array<Rgb, 5> kStops{
        {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}};
    if (!std::isfinite(t)) t = 0;
    t = std::clamp(t, 0.0, 1.0) * (kStops.size() - 1);
    const size_t i = std::min(static_cast<size_t>(t), kStops.size() - 2);
    const double f = t - static_cast<double>(i);
    auto mix = [&](double a, double b) { return static_cast<int>(std::lround(a + (b - a) * f)); };
    return fmt::format("#{:02x}{:02x}{:02x}", mix(kStops[i].r, kStops[i + 1].r),
                       mix(kStops[i].g, kStops[i + 1].g), mix(kStops[i].b, kStops[i + 1].b));
}

// The frame of a scatter or error-bar plot over its data's ranges (reference lines join the
// y range when there is data): ticks, and margins for the title and axis labels.
template <typename Plot>
Frame xy_frame(const Plot& plot, const Range& rx, Range ry) {
    for (const auto& r : plot.references) {
        if (usable(r.y, plot.y.log) && !ry.empty()) ry.add(r.y);
    }
    Frame f;
    f.xt = axis_ticks(rx, plot.x, 6);
    f.yt = axis_ticks(ry, plot.y, 5);
    f.left = left_margin(plot.y, f.yt);
    f.right = plot.width - 16.0;
    f.top = plot.title.empty() ? 12.0 : 34.0;
    f.bottom = plot.height - (plot.x.label.empty() ? 26.0 : 44.0);
    return f;
}

std::string render_line_plot(const LinePlot& plot) {
    Range rx, ry;
    size_t n_points = 0;
    for (const auto& s : plot.series) {
        const size_t n = std::min(s.x.size(), s.y.size());
        for (size_t i = 0; i < n; ++i) {
            if (!usable(s.x[i], plot.x.log) || !usable(s.y[i], plot.y.log)) continue;
            rx.add(s.x[i]);
            ry.add(s.y[i]);
            ++n_points;
        }
    }
    for (const auto& r : plot.references) {
        if (usable(r.y, plot.y.log) && n_points > 0) ry.add(r.y);
    }
    Frame f;
    f.xt = axis_ticks(rx, plot.x, 6);
    f.yt = axis_ticks(ry, plot.y, 5);

    std::vector<LegendItem> legend;
    for (size_t i = 0; i < plot.series.size(); ++i) {
        const auto& s = plot.series[i];
        const std::string note = left_out_note(s, plot.x.log, plot.y.log);
        std::string name = s.name;
        if (!note.empty()) name = name.empty() ? note : name + " (" + note + ")";
        legend.push_back({name, s.color.empty() ? palette_color(i) : s.color, s.dashed, s.line});
    }
    if (legend.size() == 1 && legend[0].name.empty()) legend.clear();
    f.left = left_margin(plot.y, f.yt);
    f.right = plot.width - 16.0;
    f.top = plot.title.empty() ? 12.0 : 34.0;
    const double lh = legend_height(legend, f.right - f.left);
    const double height = plot.height + lh;
    f.bottom = plot.height - (plot.x.label.empty() ? 26.0 : 44.0);
    const Scale sx(f.xt.values.front(), f.xt.values.back(), f.left, f.right, plot.x.log);
    const Scale sy(f.yt.values.front(), f.yt.values.back(), f.bottom, f.top, plot.y.log);

    std::string out;
    open_svg(out, plot.id, "plot line-plot", plot.width, static_cast<int>(std::ceil(height)),
             plot.title);
    draw_frame(out, f, sx, sy, plot.x, plot.y);
    draw_references(out, f, sy, plot.references, plot.y.log);
    if (n_points == 0) empty_note(out, f, "not recorded");
    const std::string clip = clip_attr(out, plot.id, f);
    // Markers only stay visible while they are sparse enough to tell apart.
    const double plot_px = f.right - f.left;
    for (size_t i = 0; i < plot.series.size(); ++i) {
        const auto& s = plot.series[i];
        const std::string& color = s.color.empty() ? palette_color(i) : s.color;
        const size_t n = std::min(s.x.size(), s.y.size());
        size_t valid = 0;
        std::string path;
        bool pen_down = false;
        for (size_t k = 0; k < n; ++k) {
            if (!usable(s.x[k], plot.x.log) || !usable(s.y[k], plot.y.log)) {
                pen_down = false;
                continue;
            }
            path += fmt::format("{}{} {}", pen_down ? " L" : (path.empty() ? "M" : " M"),
                                px(sx.map(s.x[k])), px(sy.map(s.y[k])));
            pen_down = true;
            ++valid;
        }
        const bool dense = static_cast<double>(valid) > plot_px / 8.0;
        out += fmt::format("<g class=\"series{}\" data-series=\"{}\" data-points=\"{}\"{}>\n",
                           dense ? " dense" : "", escape_xml(s.name), valid, clip);
        if (s.line && !path.empty()) {
            out += fmt::format(
                "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" "
                "stroke-linejoin=\"round\"{}/>\n",
                path, color, dense ? "1.5" : "2", s.dashed ? " stroke-dasharray=\"6 4\"" : "");
        }
        for (size_t k = 0; k < n; ++k) {
            if (!usable(s.x[k], plot.x.log) || !usable(s.y[k], plot.y.log)) continue;
            out += fmt::format(
                "<circle class=\"pt\" cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{}\"{} "
                "data-series=\"{}\" data-x=\"{}\" data-y=\"{}\"><title>{}{}{} {}, {} {}</title>"
                "</circle>\n",
                px(sx.map(s.x[k])), px(sy.map(s.y[k])), dense ? "3" : "3.2", color,
                dense ? " fill-opacity=\"0\"" : " stroke=\"#fff\" stroke-width=\"1\"",
                escape_xml(s.name), format_number(s.x[k]), format_number(s.y[k]),
                escape_xml(s.name), s.name.empty() ? "" : ": ", escape_xml(plot.x_name),
                short_number(s.x[k]), escape_xml(plot.y_name), short_number(s.y[k]));
        }
        out += "</g>\n";
    }
    draw_legend(out, legend, f.left, plot.height - 4.0, f.right - f.left);
    out += "</svg>\n";
    return out;
}

std::string render_scatter_plot(const ScatterPlot& plot) {
    Range rx, ry;
    for (const auto& p : plot.points) {
        if (!usable(p.x, plot.x.log) || !usable(p.y, plot.y.log)) continue;
        rx.add(p.x);
        ry.add(p.y);
    }
    const Frame f = xy_frame(plot, rx, ry);
    const Scale sx(f.xt.values.front(), f.xt.values.back(), f.left, f.right, plot.x.log);
    const Scale sy(f.yt.values.front(), f.yt.values.back(), f.bottom, f.top, plot.y.log);

    std::string out;
    open_svg(out, plot.id, "plot scatter-plot", plot.width, plot.height, plot.title);
    draw_frame(out, f, sx, sy, plot.x, plot.y);
    draw_references(out, f, sy, plot.references, plot.y.log);
    if (rx.empty()) empty_note(out, f, "not recorded");

    struct Box {
        double x0, y0, x1, y1;
    };
    std::vector<Box> placed;
    // Only drawable points are sorted: a NaN would break the ordering std::sort relies on.
    std::vector<size_t> order;
    size_t left_out = 0;
    for (size_t i = 0; i < plot.points.size(); ++i) {
        if (usable(plot.points[i].x, plot.x.log) && usable(plot.points[i].y, plot.y.log))
            order.push_back(i);
        else
            ++left_out;
    }
    if (left_out > 0 && !order.empty()) {
        out += fmt::format(
            "<text class=\"note\" x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\" "
            "fill=\"#888\">{} point{} not drawn (NaN/inf{})</text>\n",
            px(f.right - 4), px(f.top + 12), left_out, left_out == 1 ? "" : "s",
            plot.x.log || plot.y.log ? " or ≤ 0 on a log axis" : "");
    }
    // Labels from the top down, each pushed below any label it would overlap.
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return sy.map(plot.points[a].y) < sy.map(plot.points[b].y);
    });
    std::string points, labels;
    for (size_t i : order) {
        const auto& p = plot.points[i];
        const std::string& color = p.color.empty() ? palette_color(i) : p.color;
        const double cx = sx.map(p.x), cy = sy.map(p.y);
        points += fmt::format(
            "<circle class=\"pt\" cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"{}\" stroke=\"#fff\" "
            "stroke-width=\"1\" data-label=\"{}\" data-x=\"{}\" data-y=\"{}\"><title>{}: {} {}, "
            "{} {}</title></circle>\n",
            px(cx), px(cy), color, escape_xml(p.label), format_number(p.x), format_number(p.y),
            escape_xml(p.label), escape_xml(plot.x_name), short_number(p.x),
            escape_xml(plot.y_name), short_number(p.y));
        const double w = text_width(p.label);
        const bool to_left = cx + 8 + w > f.right;
        Box b{to_left ? cx - 8 - w : cx + 8, cy - 9, 0, 0};
        b.x1 = b.x0 + w;
        b.y1 = b.y0 + 13;
        for (int guard = 0; guard < 50; ++guard) {
            bool clash = false;
            for (const auto& o : placed) {
                if (b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1) {
                    const double shift = o.y1 - b.y0 + 1;
                    b.y0 += shift;
                    b.y1 += shift;
                    clash = true;
                }
            }
            if (!clash) break;
        }
        placed.push_back(b);
        labels += fmt::format("<text class=\"pt-label\" x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>\n",
                              px(b.x0), px(b.y1 - 2), kTextColor, escape_xml(p.label));
    }
    out += "<g class=\"points\">\n" + points + labels + "</g>\n</svg>\n";
    return out;
}

std::string render_heat_map(const HeatMap& map) {
    const size_t rows = map.row_labels.size(), cols = map.col_labels.size();
    double vmax = map.vmax;
    if (!std::isfinite(vmax)) {
        vmax = map.vmin;
        for (double v : map.values) {
            if (std::isfinite(v)) vmax = std::max(vmax, v);
        }
    }
    if (!(vmax > map.vmin)) vmax = map.vmin + 1.0;
    const double cell =
        map.cell > 0
            ? map.cell
            : std::clamp(480.0 / static_cast<double>(std::max<size_t>(cols, 1)), 10.0, 44.0);
    double label_w = 0;
    for (const auto& l : map.row_labels) label_w = std::max(label_w, text_width(l));
    const double left = label_w + (map.y_label.empty() ? 12.0 : 30.0);
    const double top = map.title.empty() ? 10.0 : 32.0;
    const double grid_w = cell * static_cast<double>(cols);
    const double grid_h = cell * static_cast<double>(rows);
    const double bar_h = std::max(grid_h, 60.0);
    const double width = left + grid_w + (map.color_bar ? 70.0 : 12.0);
    const double height =
        top + std::max(grid_h, map.color_bar ? bar_h : 0.0) + (map.x_label.empty() ? 24.0 : 40.0);

    std::string out;
    open_svg(out, map.id, "plot heat-map", static_cast<int>(std::ceil(std::max(width, 160.0))),
             static_cast<int>(std::ceil(height)), map.title);
    const bool values_fit = map.show_values && cell >= 30;
    // Column labels thinned so that they never overlap.
    const size_t col_every =
        std::max<size_t>(1, static_cast<size_t>(std::ceil(24.0 / std::max(cell, 1.0))));
    for (size_t r = 0; r < rows; ++r) {
        out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{}\">{}</text>\n",
                           px(left - 6), px(top + (static_cast<double>(r) + 0.5) * cell + 4),
                           kTextColor, escape_xml(map.row_labels[r]));
    }
    for (size_t c = 0; c < cols; c += col_every) {
        out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">{}</text>\n",
                           px(left + (static_cast<double>(c) + 0.5) * cell), px(top + grid_h + 14),
                           kTextColor, escape_xml(map.col_labels[c]));
    }
    out += "<g class=\"cells\">\n";
    for (size_t r = 0; r < rows; ++r) {
        for (size_t c = 0; c < cols; ++c) {
            const size_t idx = r * cols + c;
            const double v = idx < map.values.size() ? map.values[idx] : kNaN;
            const double t = (v - map.vmin) / (vmax - map.vmin);
            const double x = left + static_cast<double>(c) * cell;
            const double y = top + static_cast<double>(r) * cell;
            out += fmt::format(
                "<rect class=\"cell\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
                "stroke=\"#fff\" stroke-width=\"{}\" data-row=\"{}\" data-col=\"{}\" "
                "data-v=\"{}\"><title>{}, {}: {} {}</title></rect>\n",
                px(x), px(y), px(cell), px(cell),
                std::isfinite(v) ? sequential_color(t) : std::string("#f4f4f4"),
                cell >= 16 ? "1" : "0.5", r, c, format_number(v), escape_xml(map.row_labels[r]),
                escape_xml(map.col_labels[c]), escape_xml(map.value_name),
                std::isfinite(v) ? short_number(v) : "not recorded");
            if (values_fit && std::isfinite(v)) {
                out += fmt::format(
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" "
                    "fill=\"{}\" pointer-events=\"none\">{:.2f}</text>\n",
                    px(x + cell / 2), px(y + cell / 2 + 3.5), t > 0.6 ? "#000" : "#fff", v);
            }
        }
    }
    out += "</g>\n";
    if (!map.x_label.empty()) {
        out += fmt::format(
            "<text class=\"xlabel\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{}\">{}"
            "</text>\n",
            px(left + grid_w / 2), px(top + std::max(grid_h, bar_h) + 32), kTextColor,
            escape_xml(map.x_label));
    }
    if (!map.y_label.empty()) {
        const double cy = top + grid_h / 2;
        out += fmt::format(
            "<text class=\"ylabel\" x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" "
            "text-anchor=\"middle\" fill=\"{}\">{}</text>\n",
            px(cy), px(cy), kTextColor, escape_xml(map.y_label));
    }
    if (map.color_bar) {
        const double bx = left + grid_w + 14;
        const int steps = 24;
        out += "<g class=\"color-bar\">\n";
        for (int k = 0; k < steps; ++k) {
            const double t = 1.0 - (k + 0.5) / steps;
            out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"{}\" fill=\"{}\"/>\n",
                               px(bx), px(top + bar_h * k / steps), px(bar_h / steps + 0.5),
                               sequential_color(t));
        }
        const Ticks bt = nice_ticks(map.vmin, vmax, 4);
        for (double v : bt.values) {
            if (v < map.vmin - 1e-12 || v > vmax + 1e-12) continue;
            const double y = top + bar_h * (1.0 - (v - map.vmin) / (vmax - map.vmin));
            out += fmt::format(
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\"/><text x=\"{}\" "
                "y=\"{}\" font-size=\"10\" fill=\"{}\">{}</text>\n",
                px(bx + 12), px(y), px(bx + 15), px(y), kAxisColor, px(bx + 18), px(y + 3.5),
                kTextColor, format_tick(v, bt.step, vmax));
        }
        out += "</g>\n";
    }
    out += "</svg>\n";
    return out;
}

namespace {

// A marker's outline centred on (cx, cy), about 2r across, as path data.
std::string marker_path(Marker m, double cx, double cy, double r) {
    auto polygon = [&](const std::vector<std::pair<double, double>>& at) {
        std::string d;
        for (const auto& [dx, dy] : at)
            d += fmt::format("{}{} {}", d.empty() ? "M" : " L", px(cx + dx), px(cy + dy));
        return d + " Z";
    };
    auto regular = [&](int corners, double radius, double inner) {
        std::vector<std::pair<double, double>> at;
        const int n = inner > 0 ? 2 * corners : corners;
        for (int k = 0; k < n; ++k) {
            const double a = -std::numbers::pi / 2 + 2 * std::numbers::pi * k / n;
            const double rr = inner > 0 && k % 2 == 1 ? inner : radius;
            at.push_back({rr * std::cos(a), rr * std::sin(a)});
        }
        return polygon(at);
    };
    switch (m) {
        case Marker::Circle:
            return fmt::format("M{} {} a{} {} 0 1 0 {} 0 a{} {} 0 1 0 {} 0 Z", px(cx - r), px(cy),
                               px(r), px(r), px(2 * r), px(r), px(r), px(-2 * r));
        case Marker::Square: {
            const double s = 0.88 * r;
            return polygon({{-s, -s}, {s, -s}, {s, s}, {-s, s}});
        }
        case Marker::TriangleUp:
            return polygon({{0, -1.2 * r}, {1.1 * r, 0.8 * r}, {-1.1 * r, 0.8 * r}});
        case Marker::Diamond:
            return polygon({{0, -1.25 * r}, {r, 0}, {0, 1.25 * r}, {-r, 0}});
        case Marker::TriangleDown:
            return polygon({{0, 1.2 * r}, {1.1 * r, -0.8 * r}, {-1.1 * r, -0.8 * r}});
        case Marker::Pentagon:
            return regular(5, 1.1 * r, 0);
        case Marker::Cross: {
            const double a = 0.38 * r, b = 1.1 * r;
            return polygon({{-a, -b},
                            {a, -b},
                            {a, -a},
                            {b, -a},
                            {b, a},
                            {a, a},
                            {a, b},
                            {-a, b},
                            {-a, a},
                            {-b, a},
                            {-b, -a},
                            {-a, -a}});
        }
        case Marker::Star:
            return regular(5, 1.3 * r, 0.55 * r);
    }
    return "";
}

}  // namespace

Marker marker_of(size_t index) {
    static constexpr std::array<Marker, 8> kMarkers{
        Marker::Circle,       Marker::Square,   Marker::TriangleUp, Marker::Diamond,
        Marker::TriangleDown, Marker::Pentagon, Marker::Cross,      Marker::Star};
    return kMarkers[index % kMarkers.size()];
}

std::string marker_name(Marker m) {
    switch (m) {
        case Marker::Circle:
            return "circle";
        case Marker::Square:
            return "square";
        case Marker::TriangleUp:
            return "triangle-up";
        case Marker::Diamond:
            return "diamond";
        case Marker::TriangleDown:
            return "triangle-down";
        case Marker::Pentagon:
            return "pentagon";
        case Marker::Cross:
            return "cross";
        case Marker::Star:
            return "star";
    }
    return "circle";
}

std::string render_error_bar_plot(const ErrorBarPlot& plot) {
    auto drawable = [&](const ErrorBarPoint& p) {
        return usable(p.x, plot.x.log) && usable(p.y, plot.y.log);
    };
    // A half width to draw: finite and not negative (0: the caps alone show the interval).
    auto bar = [](const std::optional<double>& e) { return e && std::isfinite(*e) && *e >= 0; };
    Range rx, ry;
    for (const auto& p : plot.points) {
        if (!drawable(p)) continue;
        rx.add(p.x);
        ry.add(p.y);
        // Bar ends widen the range; on a log axis only the ends above 0 can.
        if (bar(p.x_err)) {
            if (usable(p.x + *p.x_err, plot.x.log)) rx.add(p.x + *p.x_err);
            if (usable(p.x - *p.x_err, plot.x.log)) rx.add(p.x - *p.x_err);
        }
        if (bar(p.y_err)) {
            if (usable(p.y + *p.y_err, plot.y.log)) ry.add(p.y + *p.y_err);
            if (usable(p.y - *p.y_err, plot.y.log)) ry.add(p.y - *p.y_err);
        }
    }
    const Frame f = xy_frame(plot, rx, ry);
    const Scale sx(f.xt.values.front(), f.xt.values.back(), f.left, f.right, plot.x.log);
    const Scale sy(f.yt.values.front(), f.yt.values.back(), f.bottom, f.top, plot.y.log);

    // The legend flows in rows under the plot, as a line plot's does.
    const double legend_w = f.right - f.left;
    auto entry_width = [](const ErrorBarLegendEntry& e) { return 30 + text_width(e.name) + 16; };
    double legend_h = 0;
    if (!plot.legend.empty()) {
        double x = 0, rows = 1;
        for (const auto& e : plot.legend) {
            if (x > 0 && x + entry_width(e) > legend_w) {
                rows += 1;
                x = 0;
            }
            x += entry_width(e);
        }
        legend_h = rows * 18 + 4;
    }

    std::string out;
    open_svg(out, plot.id, "plot error-bar-plot", plot.width,
             static_cast<int>(std::ceil(plot.height + legend_h)), plot.title);
    draw_frame(out, f, sx, sy, plot.x, plot.y);
    draw_references(out, f, sy, plot.references, plot.y.log);
    if (rx.empty()) empty_note(out, f, "not recorded");
    size_t left_out = 0;
    for (const auto& p : plot.points) left_out += drawable(p) ? 0 : 1;
    if (left_out > 0 && !rx.empty()) {
        out += fmt::format(
            "<text class=\"note\" x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\" "
            "fill=\"#888\">{} point{} not drawn (NaN/inf{})</text>\n",
            px(f.right - 4), px(f.top + 12), left_out, left_out == 1 ? "" : "s",
            plot.x.log || plot.y.log ? " or ≤ 0 on a log axis" : "");
    }
    const std::string clip = clip_attr(out, plot.id, f);
    const double x_lo = f.xt.values.front(), y_lo = f.yt.values.front();

    std::string bars;
    for (size_t i = 0; i < plot.points.size(); ++i) {
        const auto& p = plot.points[i];
        if (!drawable(p)) continue;
        const std::string& color = p.color.empty() ? palette_color(i) : p.color;
        const double cx = sx.map(p.x), cy = sy.map(p.y);
        constexpr double kCap = 4.0;
        if (bar(p.x_err)) {
            // An end at or below 0 on a log axis runs to the axis end, without a cap there.
            const double lo_v = p.x - *p.x_err;
            const bool lo_cut = plot.x.log && !(lo_v > 0);
            const double x0 = lo_cut ? sx.map(x_lo) : sx.map(lo_v), x1 = sx.map(p.x + *p.x_err);
            std::string d = fmt::format("M{} {} H{} M{} {} V{}", px(x0), px(cy), px(x1), px(x1),
                                        px(cy - kCap), px(cy + kCap));
            if (!lo_cut) d += fmt::format(" M{} {} V{}", px(x0), px(cy - kCap), px(cy + kCap));
            bars += fmt::format(
                "<path class=\"error-bar\" data-axis=\"x\" data-label=\"{}\" data-lo=\"{}\" "
                "data-hi=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n",
                escape_xml(p.label), format_number(lo_v), format_number(p.x + *p.x_err), d, color);
        }
        if (bar(p.y_err)) {
            const double lo_v = p.y - *p.y_err;
            const bool lo_cut = plot.y.log && !(lo_v > 0);
            const double y0 = lo_cut ? sy.map(y_lo) : sy.map(lo_v), y1 = sy.map(p.y + *p.y_err);
            std::string d = fmt::format("M{} {} V{} M{} {} H{}", px(cx), px(y0), px(y1),
                                        px(cx - kCap), px(y1), px(cx + kCap));
            if (!lo_cut) d += fmt::format(" M{} {} H{}", px(cx - kCap), px(y0), px(cx + kCap));
            bars += fmt::format(
                "<path class=\"error-bar\" data-axis=\"y\" data-label=\"{}\" data-lo=\"{}\" "
                "data-hi=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n",
                escape_xml(p.label), format_number(lo_v), format_number(p.y + *p.y_err), d, color);
        }
    }
    out += fmt::format("<g class=\"intervals\"{}>\n{}</g>\n", clip, bars);

    // The front's step line, in x order (ties: the lower y first, so the line only rises).
    std::vector<size_t> front;
    std::vector<bool> on_front(plot.points.size(), false);
    for (size_t i : plot.front) {
        if (i < plot.points.size() && drawable(plot.points[i]) && !on_front[i]) {
            front.push_back(i);
            on_front[i] = true;
        }
    }
    std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
        const auto &pa = plot.points[a], &pb = plot.points[b];
        return pa.x != pb.x ? pa.x < pb.x : pa.y < pb.y;
    });
    if (!front.empty()) {
        std::string d = fmt::format("M{} {}", px(sx.map(plot.points[front[0]].x)),
                                    px(sy.map(plot.points[front[0]].y)));
        for (size_t k = 1; k < front.size(); ++k) {
            const auto& q = plot.points[front[k]];
            d += fmt::format(" H{} V{}", px(sx.map(q.x)), px(sy.map(q.y)));
        }
        out += fmt::format(
            "<path class=\"front\" data-points=\"{}\" d=\"{}\" fill=\"none\" stroke=\"#d1495b\" "
            "stroke-width=\"1.5\" stroke-dasharray=\"5 3\"{}/>\n",
            front.size(), d, clip);
    }

    std::string markers;
    for (size_t i = 0; i < plot.points.size(); ++i) {
        const auto& p = plot.points[i];
        if (!drawable(p)) continue;
        const std::string& color = p.color.empty() ? palette_color(i) : p.color;
        std::string tip = p.tooltip;
        if (tip.empty()) {
            tip = fmt::format("{}: {} {}, {} {}", p.label, plot.x_name, short_number(p.x),
                              plot.y_name, short_number(p.y));
        }
        markers += fmt::format(
            "<path class=\"pt{}{}\" d=\"{}\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"1\" "
            "data-label=\"{}\" data-x=\"{}\" data-y=\"{}\" data-marker=\"{}\" data-front=\"{}\">"
            "<title>{}</title></path>\n",
            plot.point_class.empty() ? "" : " ", escape_xml(plot.point_class),
            marker_path(p.marker, sx.map(p.x), sy.map(p.y), 5.5), color, escape_xml(p.label),
            format_number(p.x), format_number(p.y), marker_name(p.marker), on_front[i] ? 1 : 0,
            escape_xml(tip));
    }
    out += fmt::format("<g class=\"points\"{}>\n{}</g>\n", clip, markers);

    if (!plot.legend.empty()) {
        out += "<g class=\"legend\">\n";
        double x = 0, y = plot.height - 4.0 + 12;
        for (const auto& e : plot.legend) {
            const double w = entry_width(e);
            if (x > 0 && x + w > legend_w) {
                y += 18;
                x = 0;
            }
            const double lx = f.left + x;
            out += fmt::format("<g class=\"legend-entry\" data-name=\"{}\">", escape_xml(e.name));
            if (e.marker) {
                out += fmt::format("<path d=\"{}\" fill=\"{}\"/>",
                                   marker_path(*e.marker, lx + 12, y - 4, 5), e.color);
            } else if (!e.line) {
                out += fmt::format(
                    "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"10\" rx=\"2\" fill=\"{}\"/>",
                    px(lx + 5), px(y - 9), e.color);
            } else {
                out += fmt::format(
                    "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
                    "stroke-width=\"2\"{}/>",
                    px(lx), px(y - 4), px(lx + 24), px(y - 4), e.color,
                    e.dashed ? " stroke-dasharray=\"5 3\"" : "");
            }
            out += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text></g>\n", px(lx + 30),
                               px(y), kTextColor, escape_xml(e.name));
            x += w;
        }
        out += "</g>\n";
    }
    out += "</svg>\n";
    return out;
}

}  // namespace greenmoe::report

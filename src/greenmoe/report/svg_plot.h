// A small SVG plotting layer for report.html: line plots, labelled scatter plots and heat
// maps as self-contained <svg> elements (no fonts, scripts or links of their own).
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace greenmoe::report {

// Text made safe inside XML/HTML text and attribute values: & < > " ' escaped, control
// characters other than tab/newline dropped, invalid UTF-8 bytes replaced by U+FFFD.
std::string escape_xml(std::string_view text);

// Shortest decimal text that reads back as v ("nan"/"inf" spelled out); for data attributes.
std::string format_number(double v);

// Axis ticks on 1-2-5 steps (…, 0.1, 0.2, 0.5, 1, 2, 5, 10, …) covering [lo, hi] with about
// `target` intervals. lo == hi is widened so that the axis still has a range.
struct Ticks {
    std::vector<double> values;  // first ≤ lo, last ≥ hi, equally spaced by step
    double step = 1.0;
};
Ticks nice_ticks(double lo, double hi, int target = 5);
// The 1-2-5 step nearest to range / target.
double nice_step(double range, int target);

// Ticks for a log10 axis over [lo, hi] (both > 0): 1-2-5 multiples of powers of ten when the
// range spans at most two decades, else powers of ten, every k-th decade when it spans many
// (step = k). The first and last ticks enclose [lo, hi] and are the ends of the axis.
Ticks log_ticks(double lo, double hi);

// Tick label: as few decimals as the step needs; 12k / 3.4M style when v or axis_max (the
// axis's largest |tick|, so that one axis uses one style) reaches 10,000.
std::string format_tick(double v, double step, double axis_max = 0);
// Log-axis tick label: 0.01, 1, 100, 10k, 1M; 1e-05 style outside that.
std::string format_log_tick(double v);

// Maps data values to pixels on one axis, linear or log10. For a y axis pass
// pixel_lo > pixel_hi (SVG's y grows downwards).
class Scale {
  public:
    Scale(double domain_lo, double domain_hi, double pixel_lo, double pixel_hi, bool log);
    double map(double v) const;
    bool log() const { return log_; }

  private:
    double lo_, hi_, p_lo_, p_hi_;
    bool log_;
};

struct Axis {
    std::string label;
    bool log = false;  // log10; values ≤ 0 are left out of the plot
    // Forced ends of the range (NaN: from the data).
    double min = std::numeric_limits<double>::quiet_NaN();
    double max = std::numeric_limits<double>::quiet_NaN();
};

struct Series {
    std::string name;
    std::vector<double> x, y;  // same length; NaN points are skipped
    std::string color;         // CSS colour; empty: the palette colour of its index
    bool dashed = false;
    bool line = true;  // false: markers only
};

// A horizontal reference line (e.g. chance level), drawn behind the data.
struct ReferenceLine {
    double y = 0.0;
    std::string label;
};

struct LinePlot {
    std::string id;  // the <svg> element's id (for links and tests)
    std::string title;
    Axis x, y;
    std::vector<Series> series;
    std::vector<ReferenceLine> references;
    // Printed as a tooltip beside the point's values: "step", "s"…
    std::string x_name = "x", y_name = "y";
    int width = 600, height = 340;
};
// Every point becomes <circle class="pt" data-series=… data-x=… data-y=…> with a <title>
// tooltip; series with many points keep their markers invisible until hovered.
std::string render_line_plot(const LinePlot& plot);

struct ScatterPoint {
    double x = 0.0, y = 0.0;
    std::string label;
    std::string color;  // empty: palette colour of its index
};

struct ScatterPlot {
    std::string id;
    std::string title;
    Axis x, y;
    std::vector<ScatterPoint> points;
    std::vector<ReferenceLine> references;
    std::string x_name = "x", y_name = "y";
    int width = 600, height = 380;
};
// Points as <circle class="pt" data-label=…>, each labelled with its text beside it.
std::string render_scatter_plot(const ScatterPlot& plot);

// Marker shapes of an error-bar plot (a second dimension beside colour).
enum class Marker { Circle, Square, TriangleUp, Diamond, TriangleDown, Pentagon, Cross, Star };
// The shape of index i, cycling through all of them.
Marker marker_of(size_t index);
// Marker name for data attributes: "circle", "square", "triangle-up"…
std::string marker_name(Marker m);

// A point with optional error bars: x ± x_err, y ± y_err (half widths; none drawn where
// absent).
struct ErrorBarPoint {
    double x = 0.0, y = 0.0;
    std::optional<double> x_err, y_err;
    std::string label;    // data-label (short, e.g. the setting's name)
    std::string tooltip;  // the <title> text; empty: label and values
    std::string color;    // empty: palette colour of its index
    Marker marker = Marker::Circle;
};

struct ErrorBarLegendEntry {
    std::string name;
    std::string color = "#555555";
    std::optional<Marker> marker;  // absent: a colour swatch, or a line when `line`
    bool line = false;
    bool dashed = false;
};

struct ErrorBarPlot {
    std::string id;
    std::string title;
    Axis x, y;
    std::vector<ErrorBarPoint> points;
    std::vector<ReferenceLine> references;
    // Indices of points on a Pareto front where lower x and higher y are better: marked
    // data-front="1" and joined, in x order, by a step line (class "front": from each point
    // right at its y, then up to the next).
    std::vector<size_t> front;
    std::vector<ErrorBarLegendEntry> legend;  // drawn under the plot, in this order
    std::string point_class;                  // extra class on every marker, beside "pt"
    std::string x_name = "x", y_name = "y";
    int width = 640, height = 400;
};
// Each drawable point becomes <path class="pt …" data-label=… data-x=… data-y=…
// data-marker=… data-front=…> with a <title> tooltip; each error bar one
// <path class="error-bar" data-axis="x|y" data-label=…> (caps included) drawn under the
// markers. The axes' ranges include the bars; on a log axis a bar reaching ≤ 0 stops at the
// axis end. Points not drawable (NaN, ≤ 0 on a log axis) are counted in a note.
std::string render_error_bar_plot(const ErrorBarPlot& plot);

struct HeatMap {
    std::string id;
    std::string title;
    std::vector<std::string> row_labels, col_labels;
    std::vector<double> values;  // rows × cols, row-major; NaN: blank cell
    std::string x_label, y_label, value_name = "value";
    double vmin = 0.0;
    double vmax = std::numeric_limits<double>::quiet_NaN();  // NaN: the largest value
    int cell = 0;             // cell size in px; 0: chosen from the number of columns
    bool show_values = true;  // print the value inside cells big enough to hold it
    bool color_bar = true;
};
// Cells as <rect class="cell" data-row=… data-col=… data-v=…> with a <title> tooltip.
std::string render_heat_map(const HeatMap& map);

// Colour-blind-safe categorical palette (cycles).
const std::string& palette_color(size_t index);
// Sequential colour (viridis-like) for t in [0, 1], as #rrggbb.
std::string sequential_color(double t);

}  // namespace greenmoe::report

// The report's SVG layer: 1-2-5 and log ticks, scales, tick labels, XML escaping, and the
// markers that line plots, scatter plots and heat maps draw.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "greenmoe/report/svg_plot.h"

namespace greenmoe::report {
namespace {

size_t count(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t p = haystack.find(needle); p != std::string::npos;
         p = haystack.find(needle, p + needle.size()))
        ++n;
    return n;
}

// Values of one attribute on every element of a class, in document order.
std::vector<double> attr_values(const std::string& svg, const std::string& cls,
                                const std::string& attr) {
    std::vector<double> out;
    const std::regex element("<[a-z]+ class=\"" + cls + "\"[^>]*>");
    const std::regex value(" " + attr + "=\"([^\"]*)\"");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), element);
         it != std::sregex_iterator(); ++it) {
        const std::string tag = it->str();
        std::smatch m;
        if (std::regex_search(tag, m, value)) out.push_back(std::stod(m[1]));
    }
    return out;
}

// Every opened element of these kinds is closed: a cheap well-formedness check.
void expect_balanced(const std::string& svg) {
    EXPECT_EQ(count(svg, "<svg"), count(svg, "</svg>"));
    EXPECT_EQ(count(svg, "<g"), count(svg, "</g>"));
    EXPECT_EQ(count(svg, "<title>"), count(svg, "</title>"));
    EXPECT_EQ(count(svg, "<text"), count(svg, "</text>"));
}

TEST(ReportSvgPlot, NiceStepIsOneTwoOrFiveTimesAPowerOfTen) {
    EXPECT_DOUBLE_EQ(nice_step(7, 5), 1.0);
    EXPECT_DOUBLE_EQ(nice_step(13, 5), 2.0);
    EXPECT_DOUBLE_EQ(nice_step(30, 5), 5.0);
    EXPECT_DOUBLE_EQ(nice_step(40, 5), 10.0);
    EXPECT_DOUBLE_EQ(nice_step(0.03, 6), 0.005);
    EXPECT_DOUBLE_EQ(nice_step(1e6, 5), 200000.0);
}

TEST(ReportSvgPlot, NiceTicksEncloseTheRange) {
    Ticks t = nice_ticks(0, 1, 5);
    EXPECT_DOUBLE_EQ(t.step, 0.2);
    ASSERT_EQ(t.values.size(), 6u);
    EXPECT_DOUBLE_EQ(t.values.front(), 0.0);
    EXPECT_NEAR(t.values.back(), 1.0, 1e-12);

    t = nice_ticks(3.1, 10.9, 5);
    EXPECT_DOUBLE_EQ(t.step, 2.0);
    EXPECT_DOUBLE_EQ(t.values.front(), 2.0);
    EXPECT_DOUBLE_EQ(t.values.back(), 12.0);

    t = nice_ticks(-3, 7, 5);
    EXPECT_DOUBLE_EQ(t.values.front(), -4.0);
    EXPECT_DOUBLE_EQ(t.values.back(), 8.0);
    EXPECT_NE(std::find(t.values.begin(), t.values.end(), 0.0), t.values.end());

    // Exact multiples do not grow an extra tick (0.1 + 0.2 style rounding).
    t = nice_ticks(0.1, 0.3, 2);
    EXPECT_DOUBLE_EQ(t.step, 0.1);
    EXPECT_EQ(t.values.size(), 3u);

    // A flat series still gets a real axis around its value.
    t = nice_ticks(5, 5, 5);
    ASSERT_GE(t.values.size(), 2u);
    EXPECT_LT(t.values.front(), 5.0);
    EXPECT_GT(t.values.back(), 5.0);
    t = nice_ticks(0, 0, 5);
    EXPECT_LT(t.values.front(), 0.0);
    EXPECT_GT(t.values.back(), 0.0);

    t = nice_ticks(std::nan(""), 1, 5);
    EXPECT_GE(t.values.size(), 2u);
}

// Ticks for any finite range: at least two, increasing, finite, enclosing the data.
void expect_axis(double lo, double hi) {
    SCOPED_TRACE(testing::Message() << "[" << lo << ", " << hi << "]");
    const Ticks t = nice_ticks(lo, hi, 5);
    ASSERT_GE(t.values.size(), 2u);
    EXPECT_LE(t.values.size(), 12u);
    for (size_t i = 0; i < t.values.size(); ++i) {
        EXPECT_TRUE(std::isfinite(t.values[i]));
        if (i > 0) {
            EXPECT_LT(t.values[i - 1], t.values[i]);
        }
        EXPECT_FALSE(format_tick(t.values[i], t.step, t.values.back()).empty());
        EXPECT_LE(format_tick(t.values[i], t.step, t.values.back()).size(), 20u);
    }
    EXPECT_LE(t.values.front(), lo);
    EXPECT_GE(t.values.back(), hi);
}

TEST(ReportSvgPlot, NiceTicksForAnyFiniteRange) {
    // A diverged loss or a large run's joules: 2e10 and up once gave no ticks at all.
    expect_axis(2e10, 2e10);
    expect_axis(1.5e10, 4e10);
    expect_axis(0, 3e10);
    expect_axis(-7e15, 1e16);
    expect_axis(1e300, 1e300);
    expect_axis(1, 1e300);
    const double max = std::numeric_limits<double>::max();
    expect_axis(max, max);
    expect_axis(-max, max);
    expect_axis(-max, -max);
    expect_axis(1e-300, 3e-300);
    expect_axis(0, std::numeric_limits<double>::denorm_min());
    expect_axis(1.0, 1.0 + 1e-15);  // flat within rounding
    expect_axis(123456789.0, 123456789.5);
    for (double lo : {1e9, 2e10, 3e11, 7e14}) expect_axis(lo, lo * 1.7);
    // Labels of a huge axis stay short and tell the ticks apart.
    const Ticks t = nice_ticks(2e13, 5e13, 5);
    EXPECT_EQ(format_tick(t.values[1], t.step, t.values.back()), "2.5e+13");

    const Ticks l = log_ticks(1e-310, max);
    ASSERT_GE(l.values.size(), 2u);
    for (double v : l.values) EXPECT_TRUE(std::isfinite(v) && v > 0) << v;
    const Ticks top = log_ticks(1e308, max);
    ASSERT_GE(top.values.size(), 2u);
    EXPECT_LT(top.values.front(), top.values.back());
}

TEST(ReportSvgPlot, PlotsOfExtremeValuesStayOnThePage) {
    const double inf = std::numeric_limits<double>::infinity();
    const double max = std::numeric_limits<double>::max();
    const std::vector<std::vector<double>> cases = {
        {2e10, 2.1e10, 3e10}, {1e300, -1e300, 0},    {max, -max, max}, {5, 5, 5}, {42},
        {1e-300, 2e-300},     {7, 7.000000000000001}};
    // Assigned from a std::string: GCC 12 warns (-Wrestrict, a false positive) on the
    // inlined assignment of a literal here.
    const std::string id = "p";
    for (const auto& ys : cases) {
        for (bool log : {false, true}) {
            LinePlot p;
            p.id = id;
            p.y.log = log;
            Series s{"loss", {}, ys, ""};
            for (size_t i = 0; i < ys.size(); ++i) s.x.push_back(static_cast<double>(i) * 1e12);
            p.series.push_back(s);
            const std::string svg = render_line_plot(p);
            expect_balanced(svg);
            EXPECT_EQ(svg.find("nan"), std::string::npos) << svg;
            EXPECT_EQ(svg.find("inf"), std::string::npos) << svg;
            for (double v : attr_values(svg, "pt", "cy")) {
                EXPECT_GE(v, 0.0);
                EXPECT_LE(v, p.height);
            }
            for (double v : attr_values(svg, "pt", "cx")) {
                EXPECT_GE(v, 0.0);
                EXPECT_LE(v, p.width);
            }
            ScatterPlot sc;
            sc.y.log = log;
            for (double y : ys) sc.points.push_back({y, y, "run", ""});
            const std::string scatter = render_scatter_plot(sc);
            expect_balanced(scatter);
            EXPECT_EQ(scatter.find("nan"), std::string::npos) << scatter;
        }
    }
    // ±inf is no value to draw either: a gap like NaN.
    LinePlot p;
    p.series.push_back({"e", {0, 1, 2, 3}, {1, inf, -inf, 2}, ""});
    const std::string svg = render_line_plot(p);
    EXPECT_EQ(count(svg, "class=\"pt\""), 2u);
}

TEST(ReportSvgPlot, LegendSaysWhichPointsAreLeftOut) {
    LinePlot p;
    p.series.push_back({"train", {0, 1, 2, 3}, {3, std::nan(""), 2, INFINITY}, ""});
    p.series.push_back({"val", {0, 1}, {3, 2}, ""});
    std::string svg = render_line_plot(p);
    EXPECT_NE(svg.find("train (2 NaN/inf points: gaps)"), std::string::npos) << svg;
    EXPECT_NE(svg.find(">val<"), std::string::npos) << svg;

    // One unnamed series has no legend, unless there is something to say.
    LinePlot one;
    one.y.log = true;
    one.series.push_back({"", {0, 1, 2}, {0, 1, std::nan("")}, ""});
    svg = render_line_plot(one);
    EXPECT_NE(svg.find("1 NaN/inf point: gaps, 1 point ≤ 0 off the log scale"), std::string::npos)
        << svg;

    ScatterPlot sc;
    sc.points = {{1, 2, "a", ""}, {std::nan(""), 3, "b", ""}};
    svg = render_scatter_plot(sc);
    EXPECT_EQ(count(svg, "class=\"pt\""), 1u);
    EXPECT_NE(svg.find("1 point not drawn (NaN/inf)"), std::string::npos) << svg;
}

TEST(ReportSvgPlot, SinglePointAndConstantSeriesGetARealAxis) {
    for (const auto& ys : std::vector<std::vector<double>>{{0.5}, {3, 3, 3}, {0, 0}}) {
        LinePlot p;
        Series s{"s", {}, ys, ""};
        for (size_t i = 0; i < ys.size(); ++i) s.x.push_back(10.0);  // one x value too
        p.series.push_back(s);
        const std::string svg = render_line_plot(p);
        const auto cy = attr_values(svg, "pt", "cy");
        const auto cx = attr_values(svg, "pt", "cx");
        ASSERT_EQ(cy.size(), ys.size());
        // In the middle of the plot area, not on an edge.
        const double mid_y = (12.0 + (p.height - 26.0)) / 2;  // no title, no x label
        for (double v : cy) EXPECT_NEAR(v, mid_y, 40.0);
        for (double v : cx) EXPECT_NEAR(v, p.width / 2.0, 60.0);
    }
}

TEST(ReportSvgPlot, LogTicks) {
    Ticks t = log_ticks(1, 1e6);
    ASSERT_EQ(t.values.size(), 7u);
    for (size_t i = 0; i < t.values.size(); ++i)
        EXPECT_NEAR(std::log10(t.values[i]), static_cast<double>(i), 1e-12);

    t = log_ticks(0.5, 3e3);
    EXPECT_NEAR(t.values.front(), 0.1, 1e-15);
    EXPECT_NEAR(t.values.back(), 1e4, 1e-9);

    // Within two decades: 1-2-5 ticks, trimmed to the data.
    t = log_ticks(150, 400);
    ASSERT_EQ(t.values.size(), 3u);
    EXPECT_DOUBLE_EQ(t.values[0], 100.0);
    EXPECT_DOUBLE_EQ(t.values[1], 200.0);
    EXPECT_DOUBLE_EQ(t.values[2], 500.0);

    // Many decades: every other decade, still enclosing the data.
    t = log_ticks(3, 1e12);
    EXPECT_LE(t.values.size(), 9u);
    EXPECT_LE(t.values.front(), 3.0);
    EXPECT_GE(t.values.back(), 1e12);
    EXPECT_NEAR(t.values[1] / t.values[0], 100.0, 1e-9);
}

TEST(ReportSvgPlot, TickLabels) {
    EXPECT_EQ(format_tick(0.2, 0.2), "0.2");
    EXPECT_EQ(format_tick(1, 0.2), "1.0");
    EXPECT_EQ(format_tick(0.05, 0.05), "0.05");
    EXPECT_EQ(format_tick(1e-17, 0.05), "0");
    EXPECT_EQ(format_tick(5000, 1000), "5000");
    EXPECT_EQ(format_tick(5000, 5000, 30000), "5k");  // on an axis that goes to 30k
    EXPECT_EQ(format_tick(11500, 500, 13000), "11.5k");
    EXPECT_EQ(format_tick(0, 5000, 30000), "0");
    EXPECT_EQ(format_tick(12000, 2000), "12k");
    EXPECT_EQ(format_tick(2.5e6, 5e5), "2.5M");
    EXPECT_EQ(format_tick(-4, 2), "-4");
    EXPECT_EQ(format_log_tick(0.01), "0.01");
    EXPECT_EQ(format_log_tick(100), "100");
    EXPECT_EQ(format_log_tick(1e4), "10k");
    EXPECT_EQ(format_log_tick(1e6), "1M");
    EXPECT_EQ(format_log_tick(1e-5), "1e-05");
    EXPECT_EQ(format_number(0.1), "0.1");
    EXPECT_EQ(format_number(3), "3");
    EXPECT_EQ(format_number(std::nan("")), "nan");
}

TEST(ReportSvgPlot, Scales) {
    const Scale x(0, 10, 100, 200, false);
    EXPECT_DOUBLE_EQ(x.map(0), 100);
    EXPECT_DOUBLE_EQ(x.map(5), 150);
    EXPECT_DOUBLE_EQ(x.map(10), 200);
    const Scale y(0, 1, 300, 50, false);  // SVG y grows downwards
    EXPECT_DOUBLE_EQ(y.map(1), 50);
    EXPECT_DOUBLE_EQ(y.map(0.5), 175);
    const Scale l(1, 100, 0, 200, true);
    EXPECT_NEAR(l.map(10), 100, 1e-9);
    EXPECT_NEAR(l.map(100), 200, 1e-9);
    EXPECT_TRUE(std::isnan(l.map(0)));
    EXPECT_TRUE(std::isnan(l.map(-1)));
}

TEST(ReportSvgPlot, EscapesXml) {
    EXPECT_EQ(escape_xml("<a href=\"x\">&'</a>"),
              "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    EXPECT_EQ(escape_xml("tab\tnl\nbell\x07."), "tab\tnl\nbell.");
    EXPECT_EQ(escape_xml("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
              "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(escape_xml("a\xFF"
                         "b"),
              "a" + fffd + "b");
    EXPECT_EQ(escape_xml("cut\xC3"), "cut" + fffd);
    EXPECT_EQ(escape_xml("\xC0\xAF"), fffd + fffd);             // overlong '/'
    EXPECT_EQ(escape_xml("\xED\xA0\x80"), fffd + fffd + fffd);  // a UTF-16 surrogate
}

TEST(ReportSvgPlot, LinePlotDrawsOneMarkerPerFinitePoint) {
    LinePlot p;
    p.id = "plot-test";
    p.title = "Loss <&>";
    p.x.label = "step";
    p.y.label = "loss";
    p.series.push_back({"run <b>", {0, 1, 2}, {3.0, 2.0, 1.0}, ""});
    p.series.push_back({"val", {0, 1, 2}, {3.5, std::nan(""), 1.5}, "#123456", true});
    const std::string svg = render_line_plot(p);
    expect_balanced(svg);
    EXPECT_EQ(count(svg, "class=\"pt\""), 5u);
    EXPECT_EQ(count(svg, "<title>"), 5u);
    EXPECT_NE(svg.find("id=\"plot-test\""), std::string::npos);
    EXPECT_NE(svg.find("data-series=\"run &lt;b&gt;\""), std::string::npos);
    EXPECT_EQ(svg.find("<b>"), std::string::npos);
    EXPECT_NE(svg.find("Loss &lt;&amp;&gt;"), std::string::npos);
    EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
    EXPECT_NE(svg.find("#123456"), std::string::npos);
    // A NaN breaks the line: the val series path has two pieces.
    EXPECT_NE(svg.find(" M"), std::string::npos);
    // Higher values sit higher on the page, later steps further right.
    const auto cx = attr_values(svg, "pt", "cx");
    const auto cy = attr_values(svg, "pt", "cy");
    ASSERT_EQ(cx.size(), 5u);
    EXPECT_LT(cx[0], cx[1]);
    EXPECT_LT(cx[1], cx[2]);
    EXPECT_GT(cy[1], cy[0]);
    EXPECT_GT(cy[2], cy[1]);
    const auto data_y = attr_values(svg, "pt", "data-y");
    EXPECT_EQ(data_y, (std::vector<double>{3.0, 2.0, 1.0, 3.5, 1.5}));
}

TEST(ReportSvgPlot, LinePlotWithoutDataSaysNotRecorded) {
    LinePlot p;
    p.series.push_back({"empty", {}, {}, ""});
    const std::string svg = render_line_plot(p);
    EXPECT_NE(svg.find("not recorded"), std::string::npos);
    EXPECT_EQ(count(svg, "class=\"pt\""), 0u);
}

TEST(ReportSvgPlot, LogAxisLeavesOutNonPositiveValues) {
    LinePlot p;
    p.y.log = true;
    p.y.label = "energy";
    p.series.push_back({"e", {0, 1, 2, 3}, {0.0, 10.0, 1000.0, -5.0}, ""});
    const std::string svg = render_line_plot(p);
    EXPECT_EQ(count(svg, "class=\"pt\""), 2u);
    EXPECT_NE(svg.find("(log scale)"), std::string::npos);
    EXPECT_NE(svg.find(">1000<"), std::string::npos);
}

TEST(ReportSvgPlot, DenseSeriesKeepHoverableMarkers) {
    LinePlot p;
    Series s{"many", {}, {}, ""};
    for (int i = 0; i < 500; ++i) {
        s.x.push_back(i);
        s.y.push_back(std::sin(i * 0.1));
    }
    p.series.push_back(s);
    const std::string svg = render_line_plot(p);
    EXPECT_EQ(count(svg, "class=\"pt\""), 500u);
    EXPECT_EQ(count(svg, "fill-opacity=\"0\""), 500u);
}

TEST(ReportSvgPlot, ScatterPlotLabelsEveryPoint) {
    ScatterPlot p;
    p.id = "fig";
    p.x.log = true;
    p.x.label = "CO2e (g)";
    p.points = {{0.5, 0.26, "tiny", ""}, {40, 0.28, "small & cheap", ""}, {900, 0.31, "big", ""}};
    const std::string svg = render_scatter_plot(p);
    expect_balanced(svg);
    EXPECT_EQ(count(svg, "class=\"pt\""), 3u);
    EXPECT_EQ(count(svg, "class=\"pt-label\""), 3u);
    EXPECT_NE(svg.find("data-label=\"small &amp; cheap\""), std::string::npos);
    const auto cx = attr_values(svg, "pt", "cx");
    ASSERT_EQ(cx.size(), 3u);
    // Points are drawn top (highest accuracy) first; on a log axis 40 lies between.
    EXPECT_GT(cx[0], cx[1]);
    EXPECT_GT(cx[1], cx[2]);
}

TEST(ReportSvgPlot, HeatMapCellsCarryTheirValues) {
    HeatMap h;
    h.id = "load";
    h.row_labels = {"block 0 mlp", "block 1 mlp"};
    h.col_labels = {"E0", "E1", "E2"};
    h.values = {0.5, 0.3, 0.2, 0.1, 0.1, 0.8};
    const std::string svg = render_heat_map(h);
    expect_balanced(svg);
    EXPECT_EQ(count(svg, "class=\"cell\""), 6u);
    EXPECT_EQ(attr_values(svg, "cell", "data-v"), h.values);
    // The scale runs from vmin = 0 to the largest value.
    EXPECT_NE(svg.find("data-v=\"0.8\"><title>block 1 mlp, E2: value 0.8</title>"),
              std::string::npos);
    const std::regex top_cell("fill=\"(#[0-9a-f]{6})\"[^>]*data-row=\"1\" data-col=\"2\"");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(svg, m, top_cell));
    EXPECT_EQ(m[1].str(), sequential_color(1.0));
    EXPECT_EQ(sequential_color(0.0), "#440154");
    EXPECT_EQ(sequential_color(1.0), "#fde725");
    EXPECT_EQ(sequential_color(7.0), "#fde725");
    EXPECT_NE(svg.find(">0.50<"), std::string::npos);  // value printed in its cell
}

}  // namespace
}  // namespace greenmoe::report

// Progress bar drawing (see progress.h).
#include "greenmoe/core/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace greenmoe {

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      is_tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
    if (!finished_) finish();
}

std::string ProgressBar::format_duration(double seconds) {
    if (!(seconds >= 0) || seconds > 1e8) return "--:--";
    const auto s = static_cast<uint64_t>(seconds + 0.5);
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
    return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

void ProgressBar::update(uint64_t done, const std::string& suffix) {
    done_ = done;
    if (!suffix.empty()) suffix_ = suffix;
    const auto now = std::chrono::steady_clock::now();
    // Terminals get ~10 redraws a second; logs get a line every 10 seconds.
    const double min_interval = is_tty_ ? 0.1 : 10.0;
    if (std::chrono::duration<double>(now - last_draw_).count() < min_interval) return;
    last_draw_ = now;
    draw(false);
}

void ProgressBar::finish(const std::string& suffix) {
    if (finished_) return;
    if (!suffix.empty()) suffix_ = suffix;
    finished_ = true;
    draw(true);
}

void ProgressBar::draw(bool final_draw) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
    std::string line;
    if (total_ > 0) {
        const double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
        constexpr int kWidth = 24;
        const int filled = static_cast<int>(frac * kWidth);
        const double eta =
            rate > 0 ? static_cast<double>(total_ - std::min(total_, done_)) / rate : -1;
        line =
            fmt::format("{} {:3.0f}% [{}{}] {}/{} {} | {:.1f} {}/s | {} < {}", label_, 100.0 * frac,
                        std::string(filled, '#'), std::string(kWidth - filled, '.'), done_, total_,
                        unit_, rate, unit_, format_duration(elapsed),
                        final_draw ? format_duration(0) : format_duration(eta));
    } else {
        line = fmt::format("{} {} {} | {:.1f} {}/s | {}", label_, done_, unit_, rate, unit_,
                           format_duration(elapsed));
    }
    if (!suffix_.empty()) line += " | " + suffix_;
    if (is_tty_) {
        std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_draw ? "\n" : "");
    } else {
        std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
}

}  // namespace greenmoe

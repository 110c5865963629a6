// A console progress bar with rate and ETA, redrawn in place on a terminal and printed
// as occasional plain lines when stderr is a file or pipe (CI logs stay readable).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace greenmoe {

class ProgressBar {
  public:
    // total = 0 means unknown (no percentage or ETA, only count and rate).
    ProgressBar(std::string label, uint64_t total, std::string unit = "it");
    ~ProgressBar();

    // Sets the absolute count; redraws at most ~10 times a second.
    void update(uint64_t done, const std::string& suffix = "");
    void add(uint64_t n, const std::string& suffix = "") { update(done_ + n, suffix); }
    // Draws the final state and ends the line. Called by the destructor if not before.
    void finish(const std::string& suffix = "");

    static std::string format_duration(double seconds);

  private:
    void draw(bool final_draw);

    std::string label_, unit_, suffix_;
    uint64_t total_ = 0, done_ = 0;
    bool is_tty_ = false, finished_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace greenmoe

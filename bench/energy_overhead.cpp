// The cost of measuring energy: tokens/s of a small GPT training step (forward + backward)
// with an EnergyMonitor running (background poller, a peek every step) against none, in
// alternating blocks of steps within one run, and the cost of one peek.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/model/gpt.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    // energy_overhead [pairs of blocks] [steps per block] [poll interval s, 0 = automatic]
    const int pairs = argc > 1 ? std::atoi(argv[1]) : 6;
    const int steps = argc > 2 ? std::atoi(argv[2]) : 2;
    greenmoe::EnergyOptions options;
    options.poll_interval_s = argc > 3 ? std::atof(argv[3]) : 0.0;

    greenmoe::GptConfig config;
    config.n_layer = 4;
    config.n_head = 4;
    config.n_embd = 256;
    config.block_size = 128;
    config.vocab_size = 50257;  // padded to 50304
    config.finalize();
    const int B = 4, T = 128;
    greenmoe::GptModel model(config, B, T);
    model.init_weights(1);
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> token(0, config.vocab_size - 1);
    std::vector<int> tokens(size_t(B) * T), targets(size_t(B) * T);
    for (auto& t : tokens) t = token(rng);
    for (auto& t : targets) t = token(rng);
    const auto step = [&] {
        model.forward(tokens.data(), targets.data(), B, T);
        model.zero_grad();
        model.backward();
    };
    step();  // warm-up: BLAS threads, first-touch pages

    double time_on = 0.0, time_off = 0.0, poll_s = 0.0;
    std::vector<double> pair_ratios;  // tokens/s on / off of each adjacent pair of blocks
    std::string label;
    // on/off, off/on, on/off…: drift of the machine's speed falls on both alike.
    for (int pair = 0; pair < pairs; ++pair) {
        double pair_on = 0.0, pair_off = 0.0;
        for (int half = 0; half < 2; ++half) {
            const bool on = (half == 0) == (pair % 2 == 0);
            std::unique_ptr<greenmoe::EnergyMonitor> monitor;
            if (on) {
                monitor = std::make_unique<greenmoe::EnergyMonitor>(options);
                monitor->begin_window("bench");
            }
            const auto t0 = Clock::now();
            for (int s = 0; s < steps; ++s) {
                step();
                if (monitor) monitor->peek("bench");
            }
            const double dt = seconds_since(t0);
            (on ? time_on : time_off) += dt;
            (on ? pair_on : pair_off) += dt;
            if (monitor) label = monitor->end_window("bench").source_label;
        }
        pair_ratios.push_back(pair_off / pair_on);
    }
    std::sort(pair_ratios.begin(), pair_ratios.end());
    const double median_ratio = pair_ratios[pair_ratios.size() / 2];

    // One peek, alone.
    greenmoe::EnergyMonitor monitor(options);
    monitor.begin_window("peek");
    constexpr int kPeeks = 20000;
    const auto t0 = Clock::now();
    for (int i = 0; i < kPeeks; ++i) monitor.peek("peek");
    const double peek_us = seconds_since(t0) / kPeeks * 1e6;
    for (const auto& st : monitor.meter_status()) {
        fmt::print("meter {:<8} {}{}\n", st.name, st.available ? "" : "unavailable: ", st.detail);
    }
    poll_s = options.poll_interval_s;

    const double tokens_total = double(pairs) * steps * B * T;
    const double on_tps = tokens_total / time_on, off_tps = tokens_total / time_off;
    fmt::print(
        "model: n_layer 4, n_embd 256, vocab 50304, B {} T {}; forward+backward; {} x {} "
        "steps per mode\n",
        B, T, pairs, steps);
    fmt::print("monitor: {} (poll {})\n", label,
               poll_s > 0 ? fmt::format("{} s", poll_s) : std::string("automatic"));
    fmt::print("tokens/s  monitor off {:10.1f}\n", off_tps);
    fmt::print("tokens/s  monitor on  {:10.1f}\n", on_tps);
    fmt::print("ratio on/off          {:10.4f}  ({:+.2f} %), median of {} pairs {:.4f}\n",
               on_tps / off_tps, (on_tps / off_tps - 1.0) * 100.0, pairs, median_ratio);
    fmt::print("one peek              {:10.2f} us = {:.1e} of a step\n", peek_us,
               peek_us * 1e-6 / ((time_on + time_off) / (2.0 * pairs * steps)));
    return 0;
}

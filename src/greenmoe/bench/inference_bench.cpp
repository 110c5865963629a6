// The bench protocol on one model (see inference_bench.h).
#include "greenmoe/bench/inference_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "greenmoe/bench/latency_stats.h"
#include "greenmoe/core/error.h"

namespace greenmoe {
namespace {

double steady_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Greedy: the first of the largest logits, as std::max_element and hf::pick_token at
// temperature 0 choose it.
int32_t argmax(const float* row, int vocab) {
    return int32_t(std::max_element(row, row + vocab) - row);
}

// The window name of one run; unique per call so that nested use never collides.
std::string window_name(const void* start) {
    return fmt::format("bench-run-{}", start);
}

}  // namespace

const std::vector<std::string>& default_bench_prompts() {
    static const std::vector<std::string> prompts = {
        "Explain in simple words why the sky is blue during the day and red at sunset.",
        "Once upon a time, in a small village at the edge of a great forest, there lived",
        "Write a Python function that returns the n-th Fibonacci number using a loop.",
        "The three most important things to know about mixture-of-experts language models are",
        "Q: What is the capital of France, and what river runs through it?\nA:",
        "Summarize the main causes of the First World War in a few sentences.",
        "def quicksort(items):\n    \"\"\"Sort a list of numbers in ascending order.\"\"\"\n",
        "Dear team, thank you all for your hard work this quarter. I would like to",
    };
    return prompts;
}

EnergyMeasurement add_measurements(const EnergyMeasurement& a, const EnergyMeasurement& b) {
    if (a.seconds == 0.0 && a.joules.empty()) return b;
    EnergyMeasurement s = a;
    s.seconds += b.seconds;
    for (const auto& [source, j] : b.joules) s.joules[source] += j;
    s.total_joules += b.total_joules;
    s.total_joules_with_pue += b.total_joules_with_pue;
    s.pue = s.total_joules > 0.0 ? s.total_joules_with_pue / s.total_joules : 1.0;
    s.kwh += b.kwh;
    s.co2e_g += b.co2e_g;
    s.measured = a.measured && b.measured;
    return s;
}

std::vector<int32_t> fit_prompt(const std::vector<int32_t>& ids, int length) {
    check(!ids.empty(), "bench: a prompt encoded to no tokens");
    std::vector<int32_t> out;
    out.reserve(size_t(length));
    for (int i = 0; i < length; ++i) out.push_back(ids[size_t(i) % ids.size()]);
    return out;
}

RunMeasurement run_protocol_once(const DecoderFactory& start, int vocab,
                                 const std::vector<std::vector<int32_t>>& prompts, int new_tokens,
                                 const BenchMeters& meters) {
    check(!prompts.empty() && new_tokens >= 1, "bench: a run needs prompts and a new token");
    const auto clock = meters.clock ? meters.clock : std::function<double()>(steady_seconds);
    const int batch = int(prompts.size());
    size_t longest = 0;
    for (const auto& p : prompts) longest = std::max(longest, p.size());
    // The last token is picked, never fed: prompt + new − 1 positions.
    const int max_len = int(longest) + new_tokens - 1;
    // The cache is allocated outside the window: its size is the model's, not the run's.
    std::unique_ptr<DecodeBatch> decoder = start(batch, max_len);

    RunMeasurement m;
    m.generated.assign(size_t(batch), {});
    for (const auto& p : prompts) m.prompt_tokens += int64_t(p.size());
    m.itl_s.reserve(size_t(new_tokens));
    std::vector<std::vector<int32_t>> feed(static_cast<size_t>(batch));
    const std::string window = window_name(&m);
    if (meters.energy) meters.energy->begin_window(window);
    const double t0 = clock();
    const std::vector<float>* logits = &decoder->step(prompts);
    auto pick_all = [&]() {
        for (int s = 0; s < batch; ++s) {
            const int32_t next = argmax(logits->data() + size_t(s) * size_t(vocab), vocab);
            m.generated[size_t(s)].push_back(next);
            feed[size_t(s)].assign(1, next);
            ++m.generated_tokens;
        }
    };
    pick_all();
    double last = clock();
    m.ttft_s = last - t0;
    for (int t = 1; t < new_tokens; ++t) {
        logits = &decoder->step(feed);
        pick_all();
        const double now = clock();
        m.itl_s.push_back(now - last);
        last = now;
    }
    m.run_s = last - t0;
    if (meters.energy) m.energy = meters.energy->end_window(window);
    return m;
}

std::vector<BenchRow> bench_language_model(const LanguageModel& model, const BenchProtocol& p,
                                           const BenchMeters& meters,
                                           const std::function<void(const std::string&)>& progress,
                                           std::vector<EnergyMeasurement>* energy_sums) {
    const std::vector<std::string>& texts = p.prompts.empty() ? default_bench_prompts() : p.prompts;
    check(p.prompt_tokens + p.new_tokens - 1 <= model.max_length(),
          "bench: --prompt-tokens {} + --new-tokens {} need {} positions; {} holds {}",
          p.prompt_tokens, p.new_tokens, p.prompt_tokens + p.new_tokens - 1, model.name(),
          model.max_length());
    std::vector<std::vector<int32_t>> fitted;
    for (const auto& text : texts)
        fitted.push_back(fit_prompt(model.encode_prompt(text), p.prompt_tokens));
    const DecoderFactory start = [&](int batch, int max_len) {
        return model.start_decoding(batch, max_len);
    };
    const ModelSize size = model.size();

    std::vector<BenchRow> rows;
    for (const int batch : p.batches) {
        std::vector<std::vector<int32_t>> prompts;
        for (int s = 0; s < batch; ++s) prompts.push_back(fitted[size_t(s) % fitted.size()]);
        for (int w = 0; w < p.warmup; ++w) {
            if (progress) progress(fmt::format("batch {}: warm-up {}/{}", batch, w + 1, p.warmup));
            run_protocol_once(start, model.vocab_size(), prompts, p.new_tokens,
                              {nullptr, meters.clock});
        }
        BenchRow row;
        row.model = model.name();
        row.batch = batch;
        row.prompt_tokens = p.prompt_tokens;
        row.new_tokens = p.new_tokens;
        row.warmup = p.warmup;
        row.repeats = p.repeats;
        row.cv_threshold = p.cv_threshold;
        row.parameters = size.parameters;
        row.active_parameters = size.active_parameters;
        row.experts_per_layer = size.experts_per_moe_layer;
        row.top_k = size.top_k;
        std::vector<double> ttft, run_s, decode_s, itl, window_s, energy, hardware_j, co2e;
        EnergyMeasurement sum;
        for (int r = 0; r < p.repeats; ++r) {
            if (progress) progress(fmt::format("batch {}: run {}/{}", batch, r + 1, p.repeats));
            const RunMeasurement m =
                run_protocol_once(start, model.vocab_size(), prompts, p.new_tokens, meters);
            // Every run is the same protocol: differing counts would be a bug, not noise.
            check(r == 0 || (m.generated_tokens == row.generated_tokens_per_run &&
                             m.prompt_tokens == row.prompt_tokens_per_run),
                  "bench: run {} of {} counted different tokens than run 1", r + 1, model.name());
            row.prompt_tokens_per_run = m.prompt_tokens;
            row.generated_tokens_per_run = m.generated_tokens;
            ttft.push_back(m.ttft_s);
            run_s.push_back(m.run_s);
            decode_s.push_back(m.run_s - m.ttft_s);
            itl.insert(itl.end(), m.itl_s.begin(), m.itl_s.end());
            if (m.energy) {
                window_s.push_back(m.energy->seconds);
                energy.push_back(m.energy->total_joules_with_pue);
                hardware_j.push_back(m.energy->total_joules);
                co2e.push_back(m.energy->co2e_g);
                sum = add_measurements(sum, *m.energy);
                row.energy_measured = m.energy->measured;
                row.energy_source = m.energy->source_label;
                row.pue = m.energy->pue;
            }
        }
        row.ttft_s = mean_of(ttft);
        row.run_s = mean_of(run_s);
        row.itl_mean_s = itl.empty() ? 0.0 : mean_of(itl);
        row.itl_p50_s = itl.empty() ? 0.0 : percentile_of(itl, 0.5);
        row.itl_p90_s = itl.empty() ? 0.0 : percentile_of(itl, 0.9);
        row.prefill_tokens_per_s = double(row.prompt_tokens_per_run) / row.ttft_s;
        // The first token of each sequence comes with the prefill; the rest are decode steps.
        const double decode_tokens = double(row.generated_tokens_per_run - batch);
        row.decode_tokens_per_s = decode_tokens > 0 ? decode_tokens / mean_of(decode_s) : 0.0;
        row.cv_run_s = coefficient_of_variation(run_s);
        if (!energy.empty()) {
            row.window_s = mean_of(window_s);
            row.energy_j = mean_of(energy);
            row.j_per_token = row.energy_j / double(row.generated_tokens_per_run);
            row.j_per_response = row.energy_j / double(batch);
            row.average_power_w = mean_of(hardware_j) / row.window_s;
            row.co2e_g_per_1000_responses = mean_of(co2e) / double(batch) * 1000.0;
            row.cv_energy_j = coefficient_of_variation(energy);
        }
        if (row.cv_run_s) {
            row.stable = *row.cv_run_s <= p.cv_threshold &&
                         (!row.cv_energy_j || *row.cv_energy_j <= p.cv_threshold);
        }
        rows.push_back(std::move(row));
        if (energy_sums) energy_sums->push_back(sum);
    }
    return rows;
}

}  // namespace greenmoe

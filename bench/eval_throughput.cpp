// Evaluation throughput of the `small` model (6 layers, width 384, block 256, vocab 50304):
// HellaSwag items per second (context run once, four endings from its KV cache), and text
// generation tokens per second with the KV cache against recomputing the whole window per
// token, both measured in this one run. Also the HellaSwag rate of scoring every ending as
// its own full sequence (no shared prefix), for the ratio.
//
//   bench/eval_throughput [--items N] [--tokens N] [--data hellaswag file] [--mlp dense|switch|…]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "greenmoe/eval/hellaswag.h"
#include "greenmoe/eval/hellaswag_data.h"
#include "greenmoe/eval/sampler.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/tokenizer_files.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

greenmoe::GptConfig small_config(const std::string& mlp) {
    greenmoe::GptConfig c;
    c.n_layer = 6;
    c.n_head = 6;
    c.n_embd = 384;
    c.block_size = 256;
    c.vocab_size = 50257;
    c.mlp = mlp;
    if (mlp != "dense") {
        c.n_experts = 4;
        c.top_k = 2;
    }
    c.finalize();
    return c;
}

// The reference for items/s: each ending scored as a whole sequence by the training
// forward (batch of 4, no cache), as nanoGPT's hellaswag.py does.
double items_per_second_without_cache(greenmoe::GptModel& model,
                                      const greenmoe::Gpt2Tokenizer& tokenizer,
                                      const std::vector<greenmoe::HellaSwagItem>& items) {
    const int block = model.config().block_size;
    const auto t0 = Clock::now();
    for (const auto& item : items) {
        const std::vector<int> ctx = tokenizer.encode_ordinary(item.context);
        std::vector<std::vector<int>> rows;
        size_t T = 0;
        for (const auto& e : item.endings) {
            std::vector<int> row = ctx;
            const std::vector<int> end = tokenizer.encode_ordinary(" " + e);
            row.insert(row.end(), end.begin(), end.end());
            if (row.size() > size_t(block)) row.erase(row.begin(), row.end() - block);
            T = std::max(T, row.size());
            rows.push_back(std::move(row));
        }
        std::vector<int> tokens(4 * T, 0);
        for (size_t i = 0; i < 4; ++i) std::copy(rows[i].begin(), rows[i].end(), &tokens[i * T]);
        model.forward(tokens.data(), nullptr, 4, static_cast<int>(T));
    }
    return items.size() / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
    size_t n_items = 200;
    int n_tokens = 200;
    std::string data, mlp = "dense";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--items")) n_items = std::strtoul(argv[i + 1], nullptr, 10);
        if (!std::strcmp(argv[i], "--tokens")) n_tokens = std::atoi(argv[i + 1]);
        if (!std::strcmp(argv[i], "--data")) data = argv[i + 1];
        if (!std::strcmp(argv[i], "--mlp")) mlp = argv[i + 1];
    }
    if (data.empty()) {
        const char* shared = std::getenv("GREENMOE_DATA");
        data = std::string(shared ? shared : "../shared/data") +
               "/hellaswag/hellaswag_val_full.txt.bz2";
    }
    try {
        const greenmoe::GptConfig config = small_config(mlp);
        greenmoe::GptModel model(config, 4, config.block_size);
        model.init_weights(1);
        model.set_training(false);
        model.set_capacity_limits(false);
        const auto tokenizer = greenmoe::Gpt2Tokenizer::load(greenmoe::find_tokenizer_dir(""));
        const auto items = greenmoe::read_hellaswag(data, n_items);

        std::printf("small (%s), %zu HellaSwag items from %s, %d generated tokens\n", mlp.c_str(),
                    items.size(), data.c_str(), n_tokens);
        // HellaSwag: greenmoe's scorer vs whole sequences, alternating twice.
        double cached = 0, plain = 0;
        for (int round = 0; round < 2; ++round) {
            model.set_capacity_limits(false);
            const auto r = greenmoe::evaluate_hellaswag(model, tokenizer, items);
            cached = std::max(cached, r.items / r.seconds);
            plain = std::max(plain, items_per_second_without_cache(model, tokenizer, items));
        }
        std::printf(
            "hellaswag: %.1f items/s (shared context + KV cache), %.1f items/s (4 full "
            "sequences per item), ratio %.2fx\n",
            cached, plain, cached / plain);

        // Generation from a 16-token prompt: with the cache vs recomputing the window.
        greenmoe::SampleOptions options;
        options.max_new_tokens = n_tokens;
        options.temperature = 0.0f;  // greedy: both paths give the same tokens
        std::vector<int> prompt(16);
        for (int i = 0; i < 16; ++i) prompt[size_t(i)] = 1000 + 37 * i;
        double with = 0, without = 0;
        bool same = true;
        for (int round = 0; round < 2; ++round) {
            auto t0 = Clock::now();
            const auto a = greenmoe::generate(model, prompt, options);
            with = std::max(with, a.size() / seconds_since(t0));
            t0 = Clock::now();
            const auto b = greenmoe::generate_recompute(model, prompt, options);
            without = std::max(without, b.size() / seconds_since(t0));
            same = same && a == b;
        }
        std::printf(
            "generate: %.1f tok/s with the KV cache, %.1f tok/s recomputing, ratio "
            "%.2fx (same tokens: %s)\n",
            with, without, with / without, same ? "yes" : "NO");
        return same ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "eval_throughput: %s\n", e.what());
        return 1;
    }
}

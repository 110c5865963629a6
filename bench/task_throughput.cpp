// Benchmark-task scoring speed: documents per second on ARC-Easy-style and HellaSwag-style
// requests, 0-shot and 15-shot, with the `small` greenmoe model (6 layers, width 384, block
// 256, GPT-2 vocabulary; --mlp chooses its MLP) and a synthetic OLMoE-1B-7B-shaped model
// (hidden 2048, 64 experts of 1024, top-8, --layers layers, bf16, vocabulary 50,304), all
// measured in this one run, three ways over the same requests:
//   pairs   every (context, choice) pair as its own sequence, as a scorer without a cache runs
//           them (lm-evaluation-harness with a Hugging Face model);
//   shared  each document's context once, its choices from copies of its key/value cache;
//   batched the same, documents together up to 1,024 tokens per call (what `eval --task` does).
// Requests are random token ids with the lengths of the real tasks' prompts (GPT-2 tokens:
// ARC-Easy context about 25, choices about 5; HellaSwag context about 40, endings about 22; a
// 15-shot example adds about 30 and 62), cut to the model's window as the harness cuts them.
//
//   bench/task_throughput [--docs 48] [--fewshot-docs 8] [--layers 2] [--mlp dense]
//                         [--model small|olmoe|both]
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "greenmoe/eval/language_model.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/text/tokenizer_files.h"
#include "synthetic_hf_model.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using greenmoe::LanguageModel;
using greenmoe::ScoreRequest;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Options {
    int docs = 48, fewshot_docs = 8, layers = 2;
    std::string mlp = "dense", model = "both";
};

// Lengths of one task style in tokens: the document's own context and choices, and what each
// few-shot example adds in front.
struct TaskStyle {
    const char* name;
    int context, choice, shot;
};
constexpr TaskStyle kArc{"ARC-Easy", 25, 5, 30};
constexpr TaskStyle kHellaSwag{"HellaSwag", 40, 22, 62};

// A length around `mean` (±30 %), at least 1.
int around(std::mt19937& rng, int mean) {
    std::uniform_real_distribution<double> d(0.7, 1.3);
    return std::max(1, static_cast<int>(mean * d(rng) + 0.5));
}

// Documents of four choices, with `shots` few-shot examples in the context, cut as the harness
// cuts a request to the window: (context + continuation)[-(window + 1):].
std::vector<ScoreRequest> make_requests(const TaskStyle& style, int shots, int docs, int window,
                                        int vocab, uint64_t seed) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    auto ids = [&](int n) {
        std::vector<int32_t> v(static_cast<size_t>(n));
        for (auto& id : v) id = static_cast<int32_t>(rng() % uint32_t(vocab));
        return v;
    };
    std::vector<ScoreRequest> out;
    for (int d = 0; d < docs; ++d) {
        int context = around(rng, style.context);
        for (int s = 0; s < shots; ++s) context += around(rng, style.shot);
        ScoreRequest r{ids(context), {}};
        size_t longest = 0;
        for (int c = 0; c < 4; ++c) {
            r.continuations.push_back(ids(around(rng, style.choice)));
            longest = std::max(longest, r.continuations.back().size());
        }
        // One cut for the document keeps its choices sharing a context.
        const size_t keep = size_t(window) + 1 - longest;
        if (r.context.size() > keep)
            r.context.erase(r.context.begin(), r.context.end() - ptrdiff_t(keep));
        out.push_back(std::move(r));
    }
    return out;
}

double checksum = 0.0;  // keeps the scores alive

double docs_per_second_pairs(const LanguageModel& model, const std::vector<ScoreRequest>& docs) {
    const auto start = Clock::now();
    for (const ScoreRequest& r : docs) {
        for (const auto& cont : r.continuations) {
            checksum += model.score(r.context, {cont})[0].log_likelihood;
        }
    }
    return double(docs.size()) / seconds_since(start);
}

double docs_per_second_shared(const LanguageModel& model, const std::vector<ScoreRequest>& docs) {
    const auto start = Clock::now();
    for (const ScoreRequest& r : docs) {
        checksum += model.score(r.context, r.continuations)[0].log_likelihood;
    }
    return double(docs.size()) / seconds_since(start);
}

double docs_per_second_batched(const LanguageModel& model, const std::vector<ScoreRequest>& docs) {
    const auto start = Clock::now();
    for (size_t begin = 0; begin < docs.size();) {
        std::vector<ScoreRequest> batch;
        size_t tokens = 0;
        while (begin < docs.size() && (batch.empty() || tokens < 1024)) {
            tokens += docs[begin].context.size();
            for (const auto& c : docs[begin].continuations) tokens += c.size();
            batch.push_back(docs[begin++]);
        }
        checksum += model.score_batch(batch)[0][0].log_likelihood;
    }
    return double(docs.size()) / seconds_since(start);
}

void bench_model(const char* label, const LanguageModel& model, const Options& o) {
    const int window = model.max_length();
    for (const TaskStyle* style : {&kArc, &kHellaSwag}) {
        for (const int shots : {0, 15}) {
            const int docs = shots == 0 ? o.docs : o.fewshot_docs;
            const auto requests =
                make_requests(*style, shots, docs, window, model.vocab_size(), 17 + shots);
            // One document first: buffers allocated, pages touched.
            model.score_batch({requests.front()});
            const double pairs = docs_per_second_pairs(model, requests);
            const double shared = docs_per_second_shared(model, requests);
            const double batched = docs_per_second_batched(model, requests);
            std::printf("| %s | %s | %d | %.2f | %.2f | %.2f | %.2f× | %.2f× |\n", label,
                        style->name, shots, pairs, shared, batched, shared / pairs,
                        batched / pairs);
            std::fflush(stdout);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--docs") {
            o.docs = std::atoi(next());
        } else if (a == "--fewshot-docs") {
            o.fewshot_docs = std::atoi(next());
        } else if (a == "--layers") {
            o.layers = std::atoi(next());
        } else if (a == "--mlp") {
            o.mlp = next();
        } else if (a == "--model") {
            o.model = next();
        } else {
            std::fprintf(stderr,
                         "usage: task_throughput [--docs N] [--fewshot-docs N] [--layers N] "
                         "[--mlp dense|switch|…] [--model small|olmoe|both]\n");
            return a == "--help" ? 0 : 2;
        }
    }
    if (o.docs < 1 || o.fewshot_docs < 1 || o.layers < 1) {
        std::fprintf(stderr, "--docs, --fewshot-docs and --layers must be at least 1\n");
        return 2;
    }
    const fs::path tmp =
        fs::temp_directory_path() / ("greenmoe_task_bench_" + std::to_string(getpid()));
    fs::create_directories(tmp);
    std::printf(
        "Documents per second (%d threads); pairs: every (context, choice) its own "
        "sequence; shared: the context once per document; batched: documents together.\n\n",
        omp_get_max_threads());
    std::printf(
        "| model | task style | shots | pairs docs/s | shared docs/s | batched docs/s | "
        "shared ÷ pairs | batched ÷ pairs |\n|---|---|---|---|---|---|---|---|\n");
    try {
        if (o.model != "olmoe") {
            greenmoe::GptConfig c;
            c.n_layer = 6;
            c.n_head = 6;
            c.n_embd = 384;
            c.block_size = 256;
            c.vocab_size = 50257;
            c.mlp = o.mlp;
            c.finalize();
            greenmoe::GptModel gpt(c, 1, 1);
            gpt.init_weights(1);
            greenmoe::save_gpt_weights(tmp / "small.safetensors", gpt);
            const auto model = greenmoe::open_language_model(tmp / "small.safetensors", "");
            const std::string label = "small (" + o.mlp + ")";
            bench_model(label.c_str(), *model, o);
        }
        if (o.model != "small") {
            const fs::path dir = tmp / "olmoe";
            bench::write_model(bench::kOlmoe, o.layers, 50304, dir);
            // Only ids are scored: any tokenizer.json opens the model.
            fs::copy_file(fs::path(GREENMOE_SOURCE_DIR) /
                              "tests/fixtures/hf-tokenizers/granitemoe_tokenizer.json",
                          dir / "tokenizer.json");
            const auto model = greenmoe::open_language_model(dir, "");
            const std::string label = "OLMoE-shaped, " + std::to_string(o.layers) + " layers";
            bench_model(label.c_str(), *model, o);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "task_throughput: %s\n", e.what());
        fs::remove_all(tmp);
        return 1;
    }
    fs::remove_all(tmp);
    if (checksum == 0.12345) std::printf("%g\n", checksum);
    return 0;
}

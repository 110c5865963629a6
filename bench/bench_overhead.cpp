// The cost of `greenmoe bench`'s measuring: decode tokens/s of a synthetic OLMoE-shaped model
// (bf16, OLMoE-1B-7B's layer shapes, 2 layers, vocabulary 4096) through the bench protocol with
// its meters on (an EnergyMonitor as `greenmoe bench` opens it: RAPL/NVML where readable, the
// Green Algorithms estimate otherwise, its background poller, a window per run, a clock read
// per token), against the bare generation loop on the same decoder, alternating in one run.
// Target: ratio ≥ 0.98.
//
//   bench/bench_overhead [--layers 2] [--prompt 32] [--tokens 64] [--pairs 6] [--vocab 4096]
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/bench/inference_bench.h"
#include "greenmoe/bench/latency_stats.h"
#include "greenmoe/core/half.h"
#include "greenmoe/energy/energy_monitor.h"
#include "greenmoe/eval/hf_decode_batch.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/io/safetensors.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using greenmoe::DType;

constexpr int64_t kHidden = 2048, kHeads = 16, kExperts = 64, kExpertInter = 1024, kTopK = 8;

struct Options {
    int layers = 2, prompt = 32, tokens = 64, pairs = 6, vocab = 4096;
};

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Random bf16 values, one pool that every tensor takes a slice of (as bench/hf_moe_throughput).
class Pool {
  public:
    explicit Pool(size_t count) : values_(count) {
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> dist(-0.04f, 0.04f);
        for (auto& v : values_) v = greenmoe::f32_to_bf16(dist(rng));
    }
    const void* take(size_t count) {
        if (next_ + count > values_.size()) next_ = (next_ * 7 + 13) % (values_.size() - count);
        const void* p = values_.data() + next_;
        next_ += count / 3 + 1;
        return p;
    }

  private:
    std::vector<uint16_t> values_;
    size_t next_ = 0;
};

// An OLMoE-1B-7B-shaped Hugging Face folder (the writer of bench/hf_moe_throughput, OLMoE only).
void write_olmoe(const Options& o, const fs::path& dir) {
    fs::create_directories(dir);
    const nlohmann::json cfg = {{"model_type", "olmoe"},
                                {"hidden_size", kHidden},
                                {"num_hidden_layers", o.layers},
                                {"num_attention_heads", kHeads},
                                {"num_key_value_heads", kHeads},
                                {"vocab_size", o.vocab},
                                {"rms_norm_eps", 1e-6},
                                {"rope_theta", 1e4},
                                {"max_position_embeddings", 4096},
                                {"tie_word_embeddings", false},
                                {"hidden_act", "silu"},
                                {"num_experts", kExperts},
                                {"num_experts_per_tok", kTopK},
                                {"norm_topk_prob", false},
                                {"intermediate_size", kExpertInter},
                                {"torch_dtype", "bfloat16"}};
    std::ofstream(dir / "config.json") << cfg.dump(2);
    Pool pool(size_t{1} << 25);
    const std::vector<uint16_t> norm(size_t(kHidden), greenmoe::f32_to_bf16(1.0f));
    std::vector<greenmoe::TensorToWrite> t;
    auto add = [&](std::string name, int64_t rows, int64_t cols) {
        t.push_back({std::move(name), DType::BF16, {rows, cols}, pool.take(size_t(rows * cols))});
    };
    auto add_norm = [&](std::string name) {
        t.push_back({std::move(name), DType::BF16, {kHidden}, norm.data()});
    };
    add("model.embed_tokens.weight", o.vocab, kHidden);
    add("lm_head.weight", o.vocab, kHidden);
    add_norm("model.norm.weight");
    for (int l = 0; l < o.layers; ++l) {
        std::string p = "model.layers.";
        p += std::to_string(l) + ".";
        add_norm(p + "input_layernorm.weight");
        add_norm(p + "post_attention_layernorm.weight");
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
            add(p + "self_attn." + proj + ".weight", kHidden, kHidden);
        add_norm(p + "self_attn.q_norm.weight");
        add_norm(p + "self_attn.k_norm.weight");
        add(p + "mlp.gate.weight", kExperts, kHidden);
        for (int e = 0; e < kExperts; ++e) {
            std::string x = p + "mlp.experts.";
            x += std::to_string(e) + ".";
            add(x + "gate_proj.weight", kExpertInter, kHidden);
            add(x + "up_proj.weight", kExpertInter, kHidden);
            add(x + "down_proj.weight", kHidden, kExpertInter);
        }
    }
    greenmoe::write_safetensors(dir / "model.safetensors", t);
}

// The loop `greenmoe bench` measures, with nothing measured: prefill, then greedy steps.
// Returns decode tokens/s (the tokens after the first, over the steps that made them).
double bare_decode_tokens_per_s(const greenmoe::DecoderFactory& start, int vocab,
                                const std::vector<int32_t>& prompt, int tokens) {
    auto decoder = start(1, int(prompt.size()) + tokens - 1);
    const std::vector<float>* logits = &decoder->step({prompt});
    int32_t next =
        int32_t(std::max_element(logits->begin(), logits->begin() + vocab) - logits->begin());
    const auto t0 = Clock::now();
    for (int t = 1; t < tokens; ++t) {
        logits = &decoder->step({{next}});
        next =
            int32_t(std::max_element(logits->begin(), logits->begin() + vocab) - logits->begin());
    }
    return double(tokens - 1) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i];
        const int value = std::atoi(argv[i + 1]);
        if (key == "--layers")
            o.layers = value;
        else if (key == "--prompt")
            o.prompt = value;
        else if (key == "--tokens")
            o.tokens = value;
        else if (key == "--pairs")
            o.pairs = value;
        else if (key == "--vocab")
            o.vocab = value;
        else {
            std::fprintf(stderr, "unknown option %s\n", key.c_str());
            return 2;
        }
    }
    if (o.tokens < 2 || o.pairs < 1 || o.prompt < 1) {
        std::fprintf(stderr, "--tokens must be ≥ 2, --pairs and --prompt ≥ 1\n");
        return 2;
    }
    const fs::path dir =
        fs::temp_directory_path() / ("greenmoe_bench_overhead_" + std::to_string(getpid()));
    try {
        double load[3] = {};
        if (getloadavg(load, 3) < 0) load[0] = -1;
        std::printf(
            "threads %d, load average %.2f at start; OLMoE shape, %d layers, vocab %d, "
            "prompt %d, %d new tokens, %d pairs\n",
            omp_get_max_threads(), load[0], o.layers, o.vocab, o.prompt, o.tokens, o.pairs);
        write_olmoe(o, dir);
        const greenmoe::hf::HfModel model = greenmoe::hf::HfModel::load(dir);
        const greenmoe::DecoderFactory start = [&](int batch, int max_len) {
            return greenmoe::hf_decode_batch(model, batch, max_len);
        };
        std::mt19937 rng(1);
        std::vector<int32_t> prompt(size_t(o.prompt));
        for (auto& id : prompt) id = int32_t(rng() % uint32_t(o.vocab));

        greenmoe::EnergyOptions energy_options;  // as `greenmoe bench` opens it by default
        greenmoe::EnergyMonitor monitor(energy_options);
        const greenmoe::BenchMeters meters{&monitor, {}};
        auto metered = [&] {
            const auto m = greenmoe::run_protocol_once(start, o.vocab, {prompt}, o.tokens, meters);
            return double(m.generated_tokens - 1) / (m.run_s - m.ttft_s);
        };
        // Warm-up of both: page faults of the mapped weights, OpenMP threads.
        bare_decode_tokens_per_s(start, o.vocab, prompt, o.tokens);
        metered();

        // bare/metered, metered/bare, …: a drift of the machine's speed falls on both alike.
        std::vector<double> bare, with, ratios;
        for (int pair = 0; pair < o.pairs; ++pair) {
            double b = 0, w = 0;
            if (pair % 2 == 0) {
                b = bare_decode_tokens_per_s(start, o.vocab, prompt, o.tokens);
                w = metered();
            } else {
                w = metered();
                b = bare_decode_tokens_per_s(start, o.vocab, prompt, o.tokens);
            }
            bare.push_back(b);
            with.push_back(w);
            ratios.push_back(w / b);
            std::printf("pair %d: bare %.2f tok/s, with meters %.2f tok/s, ratio %.4f\n", pair + 1,
                        b, w, w / b);
        }
        const double median = greenmoe::percentile_of(ratios, 0.5);
        std::printf("\nmeters: %s\n", monitor.summary_line().c_str());
        std::printf("decode tokens/s: bare %.2f, with greenmoe bench's meters %.2f (means)\n",
                    greenmoe::mean_of(bare), greenmoe::mean_of(with));
        std::printf(
            "ratio with meters / bare: median of pairs %.4f, of means %.4f (target >= "
            "0.98: %s)\n",
            median, greenmoe::mean_of(with) / greenmoe::mean_of(bare),
            median >= 0.98 ? "met" : "NOT met");
        if (getloadavg(load, 3) > 0) std::printf("load average %.2f at the end\n", load[0]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        fs::remove_all(dir);
        return 1;
    }
    fs::remove_all(dir);
    return 0;
}

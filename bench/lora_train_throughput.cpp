// Speed and memory of a LoRA training step (forward, backward to the adapters, clipping and
// AdamW) on a synthetic model with OLMoE-1B-7B's layer shapes (bf16 weights in a temp Hugging
// Face folder, loaded through HfModel), against PyTorch + PEFT on the same folder, shapes and
// threads (bench/peers/lora_train_step.py: transformers' own OLMoE, PEFT LoRA adapters,
// torch.optim.AdamW) when a Python with torch, transformers and peft is found
// ($GREENMOE_PEER_PYTHON, else python3), and against this machine's fp32 sgemm peak measured
// in the same run. Two target sets: attention and router, and the MoEITS authors' set (also
// every expert's projections). Peak memory is the process's resident high-water mark during
// the steps (the mapped weights included), against the weights' bytes, also without the
// adapters' own fp32 state (values, gradients, AdamW moments), which grows with the rank.
//
//   bench/lora_train_throughput [--layers 2] [--batch 1] [--seq 128] [--rank 64]
//                               [--repeats 3] [--peer-steps 2] [--vocab 4096]
//                               [--peer-dtype bfloat16|float32]
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/bench/peak_memory.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/lora/lora_model.h"
#include "greenmoe/lora/lora_spec.h"
#include "greenmoe/train/adamw.h"
#include "sgemm_peak.h"
#include "synthetic_hf_model.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace greenmoe;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Options {
    int layers = 2, batch = 1, seq = 128, rank = 64, repeats = 3, peer_steps = 2, vocab = 4096;
    std::string peer_dtype = "bfloat16";
};

struct TargetSet {
    std::string name, targets;
};

// FLOPs of one step: the frozen products forward (2·A·T), again for every block but the last
// (activation checkpointing), and backward to their inputs (2·A·T), where A counts the
// weights one token uses; the adapters' own products (forward 2, backward 4 per parameter a
// token uses); the LM head forward and backward.
double step_flops(const hf::ModelConfig& c, const lora::LoraParams& params, int64_t tokens) {
    const double h = c.hidden_size, heads = c.num_heads, kv = c.num_kv_heads, hd = c.head_dim;
    const double attention = h * heads * hd * 2 + 2 * h * kv * hd;
    const double moe =
        c.moe.top_k * 3.0 * h * c.moe.expert_intermediate + h * c.layers[0].n_experts;
    const double layer = attention + moe;
    const double L = c.num_layers;
    double adapters = 0.0;  // adapter parameters one token uses
    for (const auto& t : params.targets()) {
        const double n = double(t.rank) * double(t.in + t.out);
        const bool expert = t.module.find(".experts.") != std::string::npos;
        adapters += expert ? n * c.moe.top_k / c.layers[0].n_experts : n;
    }
    const double head = double(c.vocab_size) * h;
    return double(tokens) *
           (2 * layer * L + 2 * layer * (L - 1) + 2 * layer * L + 6 * adapters + 4 * head);
}

struct Result {
    double step_s = 1e30, peak = 0.0, flops = 0.0, loss = 0.0;
    size_t adapter_params = 0;
};

Result run_greenmoe(const hf::HfModel& model, const TargetSet& set, const Options& o) {
    lora::LoraSpec spec =
        lora::parse_lora_spec("r=" + std::to_string(o.rank) + ",alpha=16,targets=" + set.targets);
    reset_peak_rss();
    lora::LoraParams params = lora::LoraParams::create(model.weights(), model.config(), spec, 1);
    lora::LoraModel lm(model, params, 0.0);
    lora::TokenBatch b;
    b.rows = o.batch;
    b.seq_len = o.seq;
    for (int64_t i = 0; i < int64_t(o.batch) * o.seq; ++i) {
        b.ids.push_back(static_cast<int32_t>(i * 37 % o.vocab));
        b.labels.push_back(b.ids.back());
    }
    AdamW adamw(params.layout(), AdamWConfig{0.9f, 0.999f, 1e-8f, 0.0f});
    const double tokens = double(b.predicted_tokens());
    Result r;
    for (int rep = 0; rep < o.repeats; ++rep) {
        const auto start = Clock::now();
        params.zero_grads();
        r.loss = lm.forward_backward(b, 1.0 / tokens, uint64_t(rep)).sum / tokens;
        const double norm = grad_norm(params.grads(), params.layout());
        clip_grads(params.grads(), params.layout(), norm, 1.0);
        adamw.step(params.values(), params.grads(), 1e-4f);
        r.step_s = std::min(r.step_s, seconds_since(start));
    }
    r.peak = peak_rss_now();
    r.flops = step_flops(model.config(), params, int64_t(o.batch) * o.seq);
    r.adapter_params = params.num_parameters();
    return r;
}

struct PeerResult {
    bool ok = false;
    double step_s = 0.0, peak = 0.0;
    std::string note;
};

PeerResult run_peer(const std::string& python, const fs::path& dir, const TargetSet& set,
                    const Options& o) {
    PeerResult p;
    std::string cmd =
        python + " " + (fs::path(GREENMOE_SOURCE_DIR) / "bench/peers/lora_train_step.py").string();
    cmd += " --model " + dir.string() + " --targets " + set.targets + " --rank " +
           std::to_string(o.rank) + " --alpha 16 --batch " + std::to_string(o.batch) + " --seq " +
           std::to_string(o.seq) + " --steps " + std::to_string(o.peer_steps) + " --threads " +
           std::to_string(omp_get_max_threads()) + " --dtype " + o.peer_dtype + " 2>/dev/null";
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return p;
    std::string out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, pipe)) out += buf;
    if (pclose(pipe) != 0) {
        p.note = "peer failed";
        return p;
    }
    const auto line = nlohmann::json::parse(out, nullptr, false);
    if (line.is_discarded()) {
        p.note = "peer output unreadable";
        return p;
    }
    p.ok = true;
    p.step_s = line.value("step_s", 0.0);
    p.peak = line.value("peak_rss_bytes", 0.0);
    p.note = "torch " + line.value("torch", std::string()) + ", transformers " +
             line.value("transformers", std::string()) + ", peft " +
             line.value("peft", std::string()) + ", " + o.peer_dtype + " base, " +
             std::to_string(line.value("adapter_params", int64_t{0})) + " adapter parameters";
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    const std::pair<const char*, int*> counts[] = {
        {"--layers", &o.layers}, {"--batch", &o.batch},     {"--seq", &o.seq},
        {"--rank", &o.rank},     {"--repeats", &o.repeats}, {"--peer-steps", &o.peer_steps},
        {"--vocab", &o.vocab}};
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i];
        const char* value = argv[i + 1];
        auto count = std::find_if(std::begin(counts), std::end(counts),
                                  [&](const auto& c) { return key == c.first; });
        if (count != std::end(counts)) {
            *count->second = std::atoi(value);
        } else if (key == "--peer-dtype") {
            o.peer_dtype = value;
        } else {
            std::fprintf(stderr, "unknown option %s\n", key.c_str());
            return 2;
        }
    }
    std::string python = "python3";
    if (const char* p = std::getenv("GREENMOE_PEER_PYTHON"); p && *p) python = p;
    const bool have_peer =
        std::system((python + " -c 'import torch, transformers, peft' 2>/dev/null").c_str()) == 0;
    const int threads = omp_get_max_threads();
    double load[3] = {};
    if (getloadavg(load, 3) < 0) load[0] = -1;
    std::printf("threads %d, load average %.2f at start\n", threads, load[0]);
    if (!have_peer) {
        std::printf(
            "PyTorch + PEFT peer: skipped (no torch, transformers and peft for %s; set "
            "GREENMOE_PEER_PYTHON)\n",
            python.c_str());
    }
    const fs::path dir =
        fs::temp_directory_path() / ("greenmoe_lora_bench_" + std::to_string(getpid()));
    try {
        bench::write_model(bench::kOlmoe, o.layers, o.vocab, dir);
        const double weights = double(fs::file_size(dir / "model.safetensors"));
        const hf::HfModel model = hf::HfModel::load(dir);
        std::printf(
            "%s shapes, %d layers, vocabulary %d, bf16 weights %.2f GiB; LoRA r=%d on "
            "%d × %d tokens\n",
            bench::kOlmoe.name.c_str(), o.layers, o.vocab, weights / (1 << 30), o.rank, o.batch,
            o.seq);
        const std::vector<TargetSet> sets = {
            {"attention + router", "q_proj,k_proj,v_proj,o_proj,gate"},
            {"MoEITS (+ experts)", "q_proj,k_proj,v_proj,o_proj,gate,gate_proj,up_proj,down_proj"}};
        double peak_gflops = 0.0;
        for (const TargetSet& set : sets) {
            const Result g = run_greenmoe(model, set, o);
            peak_gflops = std::max(peak_gflops, bench::sgemm_gflops());
            const double tokens = double(o.batch) * o.seq;
            std::printf("\n%s: %zu adapter parameters\n", set.name.c_str(), g.adapter_params);
            std::printf(
                "  greenmoe: %.3f s a step = %.1f tok/s, MFU %.1f %% (sgemm peak %.1f "
                "GFLOP/s); peak RSS %.2f GiB = %.2f× the weights\n",
                g.step_s, tokens / g.step_s, 100.0 * g.flops / g.step_s / 1e9 / peak_gflops,
                peak_gflops, g.peak / (1 << 30), g.peak / weights);
            // The adapters' own state (values, gradients, two AdamW moments: 16 bytes a
            // parameter in fp32) grows with the rank and the targets, not with the step's
            // work; what the step needs beyond it is the weights and the activations.
            const double adapter_state = 16.0 * double(g.adapter_params);
            std::printf(
                "  greenmoe: adapter state %.2f GiB (16 B a parameter); peak RSS without it "
                "%.2f GiB = %.2f× the weights\n",
                adapter_state / (1 << 30), (g.peak - adapter_state) / (1 << 30),
                (g.peak - adapter_state) / weights);
            if (!have_peer) continue;
            const PeerResult p = run_peer(python, dir, set, o);
            if (!p.ok) {
                std::printf("  PyTorch + PEFT: %s\n", p.note.c_str());
                continue;
            }
            std::printf(
                "  PyTorch + PEFT (%s): %.3f s a step = %.2f tok/s, peak RSS %.2f GiB "
                "-> greenmoe %.1f×\n",
                p.note.c_str(), p.step_s, tokens / p.step_s, p.peak / (1 << 30),
                p.step_s / g.step_s);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        fs::remove_all(dir);
        return 1;
    }
    fs::remove_all(dir);
    if (getloadavg(load, 3) > 0) std::printf("\nload average %.2f at the end\n", load[0]);
    return 0;
}

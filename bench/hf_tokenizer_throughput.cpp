// Encode throughput of greenmoe's Hugging Face tokenizer reader against the `tokenizers`
// package itself, on the same tokenizer.json files and the same text, measured in this run:
// a Qwen2-style byte-level BPE and a Mixtral-style Metaspace / byte-fallback BPE (8,000-token
// vocabularies, bench/data/), on tinyshakespeare split into paragraphs, one thread and all
// threads. The peer (bench/peers/hf_tokenizers_encode.py) runs when a Python with
// `tokenizers` is found ($GREENMOE_PEER_PYTHON, else python3); its ids must equal ours.
//
//   bench/hf_tokenizer_throughput [--text FILE] [--repeats N]
#include <omp.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/text/hf_tokenizer.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::exit(1);
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

// Paragraphs with their trailing blank-line separators (as the peer script splits them).
std::vector<std::string_view> paragraphs(const std::string& text) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (size_t i = 0; i + 1 < text.size(); ++i) {
        if (text[i] == '\n' && text[i + 1] == '\n') {
            size_t end = i + 1;
            while (end < text.size() && text[end] == '\n') ++end;
            out.emplace_back(text.data() + start, end - start);
            start = end;
            i = end - 1;
        }
    }
    if (start < text.size()) out.emplace_back(text.data() + start, text.size() - start);
    return out;
}

struct Run {
    double seconds = 1e30;
    std::vector<int> ids;
};

// Best of `repeats` after one warm-up; threads == 1: a loop of encode with one cache.
Run measure(const greenmoe::hf::Tokenizer& tok, const std::vector<std::string_view>& paras,
            int threads, int repeats) {
    Run run;
    omp_set_num_threads(threads);
    for (int r = 0; r <= repeats; ++r) {
        std::vector<int> ids;
        const auto t0 = Clock::now();
        if (threads == 1) {
            greenmoe::hf::BpeCache cache;
            for (const auto p : paras) {
                const auto part = tok.encode(p, false, &cache);
                ids.insert(ids.end(), part.begin(), part.end());
            }
        } else {
            for (const auto& part : tok.encode_batch(paras, false)) {
                ids.insert(ids.end(), part.begin(), part.end());
            }
        }
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (r > 0) run.seconds = std::min(run.seconds, s);
        run.ids = std::move(ids);
    }
    return run;
}

struct Peer {
    bool ok = false;
    double mb_per_s = 0;
    std::vector<int> ids;
    std::string note;
};

Peer run_peer(const std::string& python, const fs::path& script, const fs::path& tokenizer,
              const fs::path& text, int threads, int repeats) {
    Peer peer;
    const fs::path ids_file =
        fs::temp_directory_path() / ("greenmoe_peer_ids_" + std::to_string(getpid()) + ".json");
    const std::string cmd = python + " " + script.string() + " --tokenizer " + tokenizer.string() +
                            " --text " + text.string() + " --threads " + std::to_string(threads) +
                            " --repeats " + std::to_string(repeats) + " --dump-ids " +
                            ids_file.string() + " 2>/dev/null";
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return peer;
    std::string out;
    char buffer[4096];
    while (fgets(buffer, sizeof buffer, pipe)) out += buffer;
    if (pclose(pipe) != 0 || out.empty()) {
        peer.note = "peer failed";
        return peer;
    }
    const auto line = nlohmann::json::parse(out, nullptr, false);
    if (line.is_discarded()) return peer;
    peer.ok = true;
    peer.mb_per_s = line.value("mb_per_s", 0.0);
    peer.note = line.value("method", "") + ", tokenizers " + line.value("tokenizers", "");
    peer.ids = nlohmann::json::parse(read_file(ids_file)).get<std::vector<int>>();
    fs::remove(ids_file);
    return peer;
}

}  // namespace

int main(int argc, char** argv) {
    const fs::path source = GREENMOE_SOURCE_DIR;
    fs::path text_path;
    int repeats = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--text")) text_path = argv[i + 1];
        if (!std::strcmp(argv[i], "--repeats")) repeats = std::max(1, std::atoi(argv[i + 1]));
    }
    if (text_path.empty()) {
        const char* data = std::getenv("GREENMOE_DATA");
        text_path = fs::path(data && *data ? data : (source / "../shared/data").c_str()) / "text" /
                    "tinyshakespeare.txt";
    }
    const std::string text = read_file(text_path);
    const auto paras = paragraphs(text);
    const double mb = static_cast<double>(text.size()) / 1e6;
    const int all_threads = omp_get_max_threads();

    std::string python = "python3";
    if (const char* p = std::getenv("GREENMOE_PEER_PYTHON"); p && *p) python = p;
    const bool have_peer =
        std::system((python + " -c 'import tokenizers' 2>/dev/null").c_str()) == 0;
    const fs::path script = source / "bench/peers/hf_tokenizers_encode.py";

    std::printf("text: %s (%.2f MB, %zu paragraphs); %d threads available\n", text_path.c_str(), mb,
                paras.size(), all_threads);
    if (!have_peer) {
        std::printf(
            "peer: skipped (no `tokenizers` for %s; set GREENMOE_PEER_PYTHON to a Python "
            "that has it)\n",
            python.c_str());
    }
    std::printf("%-22s %7s %12s %12s %8s  %s\n", "tokenizer", "threads", "greenmoe MB/s",
                "peer MB/s", "ratio", "ids");
    for (const char* name : {"qwen2_style_8k", "mixtral_style_8k"}) {
        const fs::path file = source / "bench/data" / (std::string(name) + "_tokenizer.json");
        const auto tok = greenmoe::hf::Tokenizer::load(file);
        std::vector<int> thread_counts = {1};
        if (all_threads > 1) thread_counts.push_back(all_threads);
        for (const int threads : thread_counts) {
            // Alternate with the peer so that both see the same machine state.
            const Run ours = measure(tok, paras, threads, repeats);
            Peer peer;
            if (have_peer) peer = run_peer(python, script, file, text_path, threads, repeats);
            const double ours_mb = mb / ours.seconds;
            std::string same = "-";
            if (peer.ok) same = peer.ids == ours.ids ? "equal" : "DIFFER";
            if (peer.ok) {
                std::printf("%-22s %7d %12.2f %12.2f %7.2fx  %s (%s)\n", name, threads, ours_mb,
                            peer.mb_per_s, ours_mb / peer.mb_per_s, same.c_str(),
                            peer.note.c_str());
            } else {
                std::printf("%-22s %7d %12.2f %12s %8s  %s\n", name, threads, ours_mb, "-", "-",
                            same.c_str());
            }
            if (peer.ok && peer.ids != ours.ids) return 1;
        }
    }
    return 0;
}

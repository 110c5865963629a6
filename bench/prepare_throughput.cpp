// `prepare` throughput from Parquet: MB/s of text in and tokens/s out, on one thread and on all,
// for greenmoe and for build-nanogpt's method (bench/peers/fineweb_prepare.py: pyarrow reads
// the text column, tiktoken's encode_ordinary runs in a multiprocessing pool of as many
// processes as greenmoe has threads) on the same file in the same run, alternating round by
// round; each side's figure is its fastest round. The file is written here in FineWeb-Edu's
// schema (SNAPPY, PLAIN, one page per column chunk, 1,024 rows a row group) from the shared
// texts (../shared/data/text/*, cut into ~2.5 kB documents, --copies times). The peer runs with
// $GREENMOE_PEER_PYTHON (else python3) when it has pyarrow and tiktoken, else is skipped with
// a note. Both sides must produce the same number of tokens (else exit 1).
//
//   bench/prepare_throughput [--copies 4] [--rounds 2] [--no-peer]
#include <fmt/format.h>
#include <omp.h>
#include <snappy-c.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/io/atomic_file.h"
#include "greenmoe/text/gpt2_tokenizer.h"
#include "greenmoe/text/prepare.h"
#include "greenmoe/text/tokenizer_files.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---- a minimal Parquet writer: Thrift compact protocol, required columns, PLAIN, SNAPPY ----

class ThriftWriter {
  public:
    void i32(int16_t id, int64_t v) {
        field(id, 5);
        zigzag(v);
    }
    void i64(int16_t id, int64_t v) {
        field(id, 6);
        zigzag(v);
    }
    void binary(int16_t id, const std::string& s) {
        field(id, 8);
        varint(s.size());
        out_ += s;
    }
    void begin_struct(int16_t id) {
        field(id, 12);
        push();
    }
    void end_struct() {
        out_ += '\0';
        pop();
    }
    void begin_list(int16_t id, uint8_t element_type, size_t n) {
        field(id, 9);
        if (n < 15) {
            out_ += static_cast<char>(n << 4 | element_type);
        } else {
            out_ += static_cast<char>(0xf0 | element_type);
            varint(n);
        }
    }
    void list_i32(int64_t v) { zigzag(v); }
    void list_binary(const std::string& s) {
        varint(s.size());
        out_ += s;
    }
    void begin_list_struct() { push(); }
    void end_list_struct() { end_struct(); }
    std::string& bytes() { return out_; }

  private:
    void varint(uint64_t v) {
        while (v >= 0x80) {
            out_ += static_cast<char>((v & 0x7f) | 0x80);
            v >>= 7;
        }
        out_ += static_cast<char>(v);
    }
    void zigzag(int64_t v) {
        varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
    }
    void field(int16_t id, uint8_t type) {
        const int delta = id - last_;
        if (delta > 0 && delta <= 15) {
            out_ += static_cast<char>(delta << 4 | type);
        } else {
            out_ += static_cast<char>(type);
            zigzag(id);
        }
        last_ = id;
    }
    void push() {
        stack_.push_back(last_);
        last_ = 0;
    }
    void pop() {
        last_ = stack_.back();
        stack_.pop_back();
    }
    std::string out_;
    std::vector<int16_t> stack_;
    int16_t last_ = 0;
};

struct Document {
    std::string text;
    int64_t words = 0;
};

enum Kind { kString = 6, kInt64 = 2, kDouble = 5 };
struct Column {
    const char* name;
    Kind kind;
};
constexpr Column kColumns[] = {{"text", kString},           {"id", kString},
                               {"dump", kString},           {"url", kString},
                               {"file_path", kString},      {"language", kString},
                               {"language_score", kDouble}, {"token_count", kInt64},
                               {"score", kDouble},          {"int_score", kInt64}};

// Column c's PLAIN values for documents [begin, end).
std::string plain_values(int c, const std::vector<Document>& docs, size_t begin, size_t end) {
    std::string out;
    const auto put_string = [&](const std::string& s) {
        const auto n = static_cast<uint32_t>(s.size());
        out.append(reinterpret_cast<const char*>(&n), 4);
        out += s;
    };
    for (size_t i = begin; i < end; ++i) {
        const double score = 1.0 + static_cast<double>(i * 37 % 29) / 10.0;
        switch (c) {
            case 0:
                put_string(docs[i].text);
                break;
            case 1:
                put_string(fmt::format("<urn:uuid:{:08x}-0000-4000-8000-{:012x}>", i, i * 7919));
                break;
            case 2:
                put_string(i % 3 ? "CC-MAIN-2013-20" : "CC-MAIN-2024-10");
                break;
            case 3:
                put_string(fmt::format("http://example.org/page/{}", i));
                break;
            case 4:
                put_string(
                    fmt::format("s3://commoncrawl/crawl-data/CC-MAIN-2013-20/{}.warc.gz", i % 64));
                break;
            case 5:
                put_string("en");
                break;
            case 6:
            case 8: {
                const double v = c == 6 ? 0.9 + static_cast<double>(i % 10) / 100.0 : score;
                out.append(reinterpret_cast<const char*>(&v), 8);
                break;
            }
            default: {
                const int64_t v = c == 7 ? docs[i].words : static_cast<int64_t>(score + 0.5);
                out.append(reinterpret_cast<const char*>(&v), 8);
            }
        }
    }
    return out;
}

void write_fineweb_parquet(const fs::path& path, const std::vector<Document>& docs) {
    constexpr size_t kGroupRows = 1024;
    std::string file = "PAR1";
    struct Chunk {
        int64_t offset, compressed, uncompressed, values;
    };
    std::vector<std::vector<Chunk>> groups;
    for (size_t begin = 0; begin < docs.size(); begin += kGroupRows) {
        const size_t end = std::min(docs.size(), begin + kGroupRows);
        std::vector<Chunk> chunks;
        for (int c = 0; c < 10; ++c) {
            const std::string values = plain_values(c, docs, begin, end);
            std::string compressed(snappy_max_compressed_length(values.size()), '\0');
            size_t n = compressed.size();
            snappy_compress(values.data(), values.size(), compressed.data(), &n);
            compressed.resize(n);
            ThriftWriter h;  // PageHeader
            h.i32(1, 0);     // DATA_PAGE
            h.i32(2, static_cast<int64_t>(values.size()));
            h.i32(3, static_cast<int64_t>(compressed.size()));
            h.begin_struct(5);  // DataPageHeader: PLAIN values, RLE levels (none: required)
            h.i32(1, static_cast<int64_t>(end - begin));
            h.i32(2, 0);
            h.i32(3, 3);
            h.i32(4, 3);
            h.end_struct();
            h.bytes() += '\0';
            const auto offset = static_cast<int64_t>(file.size());
            file += h.bytes();
            file += compressed;
            chunks.push_back({offset, static_cast<int64_t>(file.size()) - offset,
                              static_cast<int64_t>(h.bytes().size() + values.size()),
                              static_cast<int64_t>(end - begin)});
        }
        groups.push_back(chunks);
    }
    ThriftWriter m;  // FileMetaData
    m.i32(1, 1);
    m.begin_list(2, 12, 11);
    m.begin_list_struct();
    m.binary(4, "schema");
    m.i32(5, 10);
    m.end_list_struct();
    for (const Column& col : kColumns) {
        m.begin_list_struct();
        m.i32(1, col.kind);
        m.i32(3, 0);  // REQUIRED
        m.binary(4, col.name);
        if (col.kind == kString) m.i32(6, 0);  // UTF8
        m.end_list_struct();
    }
    m.i64(3, static_cast<int64_t>(docs.size()));
    m.begin_list(4, 12, groups.size());
    for (size_t g = 0; g < groups.size(); ++g) {
        m.begin_list_struct();
        m.begin_list(1, 12, 10);
        int64_t bytes = 0;
        for (int c = 0; c < 10; ++c) {
            const Chunk& ch = groups[g][static_cast<size_t>(c)];
            m.begin_list_struct();
            m.i64(2, ch.offset);
            m.begin_struct(3);
            m.i32(1, kColumns[c].kind);
            m.begin_list(2, 5, 2);
            m.list_i32(0);
            m.list_i32(3);
            m.begin_list(3, 8, 1);
            m.list_binary(kColumns[c].name);
            m.i32(4, 1);  // SNAPPY
            m.i64(5, ch.values);
            m.i64(6, ch.uncompressed);
            m.i64(7, ch.compressed);
            m.i64(9, ch.offset);
            m.end_struct();
            m.end_list_struct();
            bytes += ch.uncompressed;
        }
        m.i64(2, bytes);
        m.i64(3, groups[g][0].values);
        m.end_list_struct();
    }
    m.bytes() += '\0';
    file += m.bytes();
    const auto footer = static_cast<uint32_t>(m.bytes().size());
    file.append(reinterpret_cast<const char*>(&footer), 4);
    file += "PAR1";
    greenmoe::write_file_atomic(path, file);
}

// The shared texts cut at line ends into documents of about 2.5 kB, `copies` times over.
std::vector<Document> shared_documents(int copies) {
    const fs::path dir = fs::path(GREENMOE_SOURCE_DIR).parent_path() / "shared/data/text";
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::vector<Document> docs;
    for (int copy = 0; copy < copies; ++copy) {
        for (const auto& f : files) {
            const std::string text = greenmoe::read_file(f);
            size_t start = 0;
            while (start < text.size()) {
                size_t end = text.find('\n', std::min(text.size(), start + 2500));
                end = end == std::string::npos ? text.size() : end + 1;
                Document d{text.substr(start, end - start), 0};
                bool in_word = false;
                for (const char ch : d.text) {
                    const bool space = ch == ' ' || ch == '\n' || ch == '\t';
                    d.words += !space && !in_word;
                    in_word = !space;
                }
                docs.push_back(std::move(d));
                start = end;
            }
        }
    }
    return docs;
}

struct Figure {
    bool ok = false;
    double seconds = 1e300;
    size_t tokens = 0;
    std::string note;
};

Figure run_greenmoe(const fs::path& file, const fs::path& out, const greenmoe::Gpt2Tokenizer& tok,
                    int threads) {
    omp_set_num_threads(threads);
    greenmoe::PrepareOptions o;
    o.inputs = {file};
    o.out_dir = out;
    o.name = "fw";
    o.show_progress = false;
    o.resume = false;
    const auto start = Clock::now();
    const auto r = greenmoe::prepare_shards(o, tok);
    Figure f;
    f.ok = true;
    f.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    f.tokens = r.train_tokens + r.val_tokens;
    fs::remove_all(out);
    return f;
}

Figure run_peer(const std::string& python, const fs::path& file, const fs::path& out,
                const fs::path& bpe, int threads) {
    const fs::path script = fs::path(GREENMOE_SOURCE_DIR) / "bench/peers/fineweb_prepare.py";
    const fs::path err = out.string() + ".err";
    const std::string cmd =
        fmt::format("{} {} {} --out {} --bpe-dir {} --procs {} 2>{}", python, script.string(),
                    file.string(), out.string(), bpe.string(), threads, err.string());
    Figure f;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) {
        f.note = "could not start the peer";
        return f;
    }
    std::string text;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, pipe)) text += buf;
    const int status = pclose(pipe);
    const auto json = nlohmann::json::parse(text, nullptr, false);
    fs::remove_all(out);
    if (status != 0 || json.is_discarded() || !json.contains("seconds")) {
        std::string last;
        std::ifstream in(err);
        for (std::string line; std::getline(in, line);) {
            if (!line.empty()) last = line;
        }
        f.note = fmt::format("peer failed: {}", last);
        fs::remove(err);
        return f;
    }
    fs::remove(err);
    f.ok = true;
    f.seconds = json["seconds"].get<double>();
    f.tokens = json["tokens"].get<size_t>();
    f.note = fmt::format("tiktoken {}", json.value("tiktoken", std::string("?")));
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    int copies = 4, rounds = 2;
    bool peer = true;
    std::string python = "python3";
    if (const char* p = std::getenv("GREENMOE_PEER_PYTHON"); p && *p) python = p;
    for (int i = 1; i < argc; ++i) {
        const std::string key = argv[i];
        if (key == "--no-peer") {
            peer = false;
        } else if ((key == "--copies" || key == "--rounds") && i + 1 < argc) {
            (key == "--copies" ? copies : rounds) = std::max(1, std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr,
                         "error: unknown option %s (bench/prepare_throughput [--copies N] "
                         "[--rounds N] [--no-peer])\n",
                         key.c_str());
            return 2;
        }
    }
    const int all_threads = omp_get_max_threads();
    double load[3] = {};
    if (getloadavg(load, 3) < 0) load[0] = -1;
    std::printf("threads %d, load average %.2f at start\n", all_threads, load[0]);
    if (peer && std::system((python + " -c 'import pyarrow, tiktoken' 2>/dev/null").c_str()) != 0) {
        peer = false;
        std::printf("peer: skipped (no pyarrow + tiktoken for %s; set GREENMOE_PEER_PYTHON)\n",
                    python.c_str());
    } else if (!peer) {
        std::printf("peer: skipped (--no-peer)\n");
    }

    const fs::path work =
        fs::temp_directory_path() / fmt::format("greenmoe-prepare-bench-{}", getpid());
    fs::create_directories(work);
    const fs::path file = work / "fineweb_edu.parquet";
    const auto docs = shared_documents(copies);
    double text_bytes = 0;
    for (const auto& d : docs) text_bytes += static_cast<double>(d.text.size());
    write_fineweb_parquet(file, docs);
    std::printf("input: %zu documents, %.2f MB of text, %.2f MB of Parquet (FineWeb-Edu schema)\n",
                docs.size(), text_bytes / 1e6, static_cast<double>(fs::file_size(file)) / 1e6);

    const fs::path bpe = greenmoe::find_tokenizer_dir("");
    const auto tok = greenmoe::Gpt2Tokenizer::load(bpe);
    std::vector<int> thread_counts = {1};
    if (all_threads > 1) thread_counts.push_back(all_threads);
    int status = 0;
    std::printf(
        "\n| threads | greenmoe MB/s | greenmoe tokens/s | peer MB/s | peer tokens/s | ratio |\n");
    std::printf("|---|---|---|---|---|---|\n");
    std::string peer_note;
    for (const int threads : thread_counts) {
        Figure best, best_peer;
        for (int r = 0; r < rounds; ++r) {
            const Figure g = run_greenmoe(file, work / "g", tok, threads);
            if (g.seconds < best.seconds) best = g;
            if (peer) {
                const Figure p = run_peer(python, file, work / "p", bpe, threads);
                if (p.ok && p.seconds < best_peer.seconds) best_peer = p;
                if (!p.ok) best_peer.note = p.note;
                if (p.ok) peer_note = p.note;
            }
        }
        std::string peer_cells = "– | – | –";
        if (best_peer.ok) {
            peer_cells =
                fmt::format("{:.2f} | {:.0f} | {:.2f}×", text_bytes / 1e6 / best_peer.seconds,
                            best_peer.tokens / best_peer.seconds, best_peer.seconds / best.seconds);
            if (best_peer.tokens != best.tokens) {
                std::fprintf(stderr, "error: greenmoe made %zu tokens, the peer %zu\n", best.tokens,
                             best_peer.tokens);
                status = 1;
            }
        } else if (peer) {
            peer_note = best_peer.note;
        }
        std::printf("| %d | %.2f | %.0f | %s |\n", threads, text_bytes / 1e6 / best.seconds,
                    best.tokens / best.seconds, peer_cells.c_str());
        std::fflush(stdout);
    }
    if (!peer_note.empty()) std::printf("\npeer: build-nanogpt's method, %s\n", peer_note.c_str());
    fs::remove_all(work);
    return status;
}

// Test helpers (see test_support.h).
#include "test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <zlib.h>

#include "greenmoe/text/tokenizer_files.h"

namespace greenmoe::testing {

std::filesystem::path shared_data() {
    return GREENMOE_SHARED_DATA;
}

std::filesystem::path tokenizer_dir() {
    return find_tokenizer_dir("");
}

std::filesystem::path greenmoe_binary() {
    return GREENMOE_BINARY;
}

TempDir::TempDir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    const auto base = std::filesystem::temp_directory_path();
    for (int attempt = 0; attempt < 100; ++attempt) {
        auto p = base / ("greenmoe_test_" + std::to_string(getpid()) + "_" +
                         std::to_string(counter++) + "_" + std::to_string(rd() % 100000));
        if (std::filesystem::create_directory(p)) {
            path_ = p;
            return;
        }
    }
    throw std::runtime_error("cannot create a temporary folder");
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

CommandResult run_command(const std::string& command_line) {
    CommandResult result;
    FILE* pipe = popen((command_line + " 2>&1").c_str(), "r");
    if (!pipe) return result;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
    const int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

std::string gzip(const std::string& data) {
    z_stream s{};
    EXPECT_EQ(deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    std::string out(deflateBound(&s, data.size()) + 64, '\0');
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    s.avail_in = static_cast<uInt>(data.size());
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    s.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
    out.resize(s.total_out);
    deflateEnd(&s);
    return out;
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string read_text_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A copy of a tests/fixtures/hf-models folder with a tokenizer whose ids fit its vocabulary:
// the SentencePiece-like BPE of the shared tokenizer cases cut to a few pieces, with a BOS
// template as Llama's tokenizer has.
std::filesystem::path hf_model_with_tokenizer(const std::filesystem::path& into,
                                              const std::string& name) {
    namespace fs = std::filesystem;
    const fs::path fixtures = fs::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures";
    const fs::path dir = into / name;
    fs::copy(fixtures / "hf-models" / name, dir);
    // Made by tools/fixtures/make_task_scoring_reference.py, which scores with it too.
    fs::copy(fixtures / "lm-eval" / "olmoe_tokenizer", dir);
    return dir;
}

}  // namespace greenmoe::testing

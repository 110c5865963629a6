// Helpers shared by the tests: where the fixtures are, temporary folders, running the CLI.
#pragma once

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "greenmoe/core/error.h"

namespace greenmoe::testing {

// ../shared/data beside the project root (tests may read it; the program may not).
std::filesystem::path shared_data();
// Folder holding the GPT-2 BPE files (encoder.json, vocab.bpe), as the program finds it.
std::filesystem::path tokenizer_dir();
// The built greenmoe program.
std::filesystem::path greenmoe_binary();

// A fresh empty folder under the system temp dir, removed when the object goes away.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

struct CommandResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};
// Runs a shell command line, capturing its combined output.
CommandResult run_command(const std::string& command_line);

// The message of the greenmoe::Error that f() throws (a test failure if it throws none).
template <typename F>
std::string error_message(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected greenmoe::Error";
    return {};
}

// Largest |a[i] − b[i]|, and largest |a[i]|, in double.
inline double max_abs_diff(const std::vector<float>& a, const float* b) {
    double d = 0.0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(double(a[i]) - b[i]));
    return d;
}
inline double max_abs(const std::vector<float>& a) {
    double m = 0.0;
    for (float v : a) m = std::max(m, std::abs(double(v)));
    return m;
}
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Sets the OpenMP thread count for one scope and restores it after.
class ScopedThreads {
  public:
    explicit ScopedThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
    ~ScopedThreads() { omp_set_num_threads(saved_); }
    ScopedThreads(const ScopedThreads&) = delete;
    ScopedThreads& operator=(const ScopedThreads&) = delete;

  private:
    int saved_;
};

// data compressed as a gzip stream (for reader tests).
std::string gzip(const std::string& data);

void write_text_file(const std::filesystem::path& path, const std::string& text);
std::string read_text_file(const std::filesystem::path& path);

// A copy of tests/fixtures/hf-models/<name> in `into` with a tokenizer whose ids fit its
// 23-token vocabulary (tests/fixtures/lm-eval/olmoe_tokenizer: the SentencePiece-like BPE of
// the shared tokenizer cases cut to a few pieces, with a BOS template as Llama's tokenizer
// has). Returns the copy's folder.
std::filesystem::path hf_model_with_tokenizer(const std::filesystem::path& into,
                                              const std::string& name);

}  // namespace greenmoe::testing

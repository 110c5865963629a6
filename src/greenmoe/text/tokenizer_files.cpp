// Locating the GPT-2 BPE files (see tokenizer_files.h).
#include "greenmoe/text/tokenizer_files.h"

#include <cstdlib>
#include <vector>

#include "greenmoe/core/error.h"

namespace greenmoe {

std::filesystem::path find_tokenizer_dir(const std::string& option) {
    namespace fs = std::filesystem;
    std::vector<fs::path> candidates;
    if (!option.empty()) {
        candidates.emplace_back(option);
    } else {
        if (const char* env = std::getenv("GREENMOE_TOKENIZER"); env && *env) {
            candidates.emplace_back(env);
        }
        if (const char* data = std::getenv("GREENMOE_DATA"); data && *data) {
            candidates.push_back(fs::path(data) / "gpt2-bpe");
        }
        if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
            candidates.push_back(fs::path(xdg) / "greenmoe" / "gpt2-bpe");
        }
        if (const char* home = std::getenv("HOME"); home && *home) {
            candidates.push_back(fs::path(home) / ".cache" / "greenmoe" / "gpt2-bpe");
        }
    }
    std::string tried;
    for (const auto& dir : candidates) {
        if (fs::is_regular_file(dir / "encoder.json") && fs::is_regular_file(dir / "vocab.bpe")) {
            return dir;
        }
        tried += "\n  " + dir.string();
    }
    fail(
        "GPT-2 tokenizer files (encoder.json and vocab.bpe) not found in:{}\n"
        "run scripts/setup.sh (it finds or downloads them and checks their SHA-256), or pass "
        "--tokenizer DIR / set GREENMOE_TOKENIZER, or set GREENMOE_DATA to a folder holding "
        "gpt2-bpe/",
        tried);
}

bool is_hf_tokenizer_path(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec)) return fs::is_regular_file(path / "tokenizer.json", ec);
    // A .json path is meant as a tokenizer.json even when missing: its loader says so.
    return path.extension() == ".json";
}

}  // namespace greenmoe

// Tokens for perplexity from a shard or a text file (see perplexity_data.h).
#include "greenmoe/eval/perplexity_data.h"

#include <cstring>
#include <fstream>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/token_shard.h"

namespace greenmoe {

namespace {

bool looks_like_shard(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    char head[6] = {};
    in.read(head, sizeof head);
    if (in.gcount() < 6) return false;
    if (std::memcmp(head, "\x93NUMPY", 6) == 0) return true;
    int32_t magic = 0;
    std::memcpy(&magic, head, sizeof magic);
    return magic == kShardMagic || magic == kShardMagic32;
}

}  // namespace

std::vector<int32_t> read_perplexity_tokens(const std::filesystem::path& file,
                                            const hf::Tokenizer& tokenizer) {
    check(std::filesystem::is_regular_file(file), "{}: no such file (--data)", file.string());
    std::vector<int32_t> tokens;
    if (looks_like_shard(file)) {
        const TokenShard shard = TokenShard::open(file);
        tokens.resize(shard.size());
        for (size_t i = 0; i < shard.size(); ++i) tokens[i] = static_cast<int32_t>(shard.token(i));
        return tokens;
    }
    for (const int id : tokenizer.encode(read_file(file), true)) tokens.push_back(id);
    return tokens;
}

}  // namespace greenmoe

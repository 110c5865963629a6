// libFuzzer target: TokenShard::open on arbitrary bytes, llm.c .bin or .npy (see docs/fuzzing.md).
#include "fuzz_file.h"
#include "greenmoe/core/error.h"
#include "greenmoe/io/token_shard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace greenmoe;
    const auto path = fuzz::write_input(data, size, "shard.bin");
    try {
        const TokenShard shard = TokenShard::open(path);
        // What open() promises: the tokens lie inside the file; every one is read.
        fuzz::require(shard.size() <= size / (shard.wide() ? 4 : 2));
        uint64_t sum = 0;
        for (size_t i = 0; i < shard.size(); ++i) sum += shard.token(i);
        (void)sum;
    } catch (const Error&) {
    }
    return 0;
}

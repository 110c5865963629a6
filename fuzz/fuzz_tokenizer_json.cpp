// libFuzzer target: hf::Tokenizer::load of a tokenizer.json, then an encode and a decode
// (see docs/fuzzing.md).
#include "fuzz_file.h"
#include "greenmoe/core/error.h"
#include "greenmoe/text/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace greenmoe;
    const auto path = fuzz::write_input(data, size, "tokenizer.json");
    try {
        const hf::Tokenizer tokenizer = hf::Tokenizer::load(path);
        const std::vector<int> ids = tokenizer.encode("Hello world, 123 <unk> h\xc3\xa9llo!");
        for (const int id : ids) fuzz::require(id >= 0 && id < tokenizer.vocab_size());
        tokenizer.decode(ids);
    } catch (const Error&) {
    }
    return 0;
}

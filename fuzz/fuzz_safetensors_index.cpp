// libFuzzer target: SafetensorsModel::open of a folder whose model.safetensors.index.json is the
// input, beside the two shards of the tiny_llama fixture (see docs/fuzzing.md).
#include <filesystem>

#include "fuzz_file.h"
#include "greenmoe/core/error.h"
#include "greenmoe/io/safetensors_model.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const std::filesystem::path fixtures =
        std::filesystem::path(GREENMOE_SHARED_DATA) / "hf-fixtures";
    for (const char* shard :
         {"tiny_llama-00001-of-00002.safetensors", "tiny_llama-00002-of-00002.safetensors"}) {
        std::filesystem::copy_file(fixtures / shard, greenmoe::fuzz::scratch_dir() / shard,
                                   std::filesystem::copy_options::overwrite_existing);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace greenmoe;
    fuzz::write_input(data, size, "model.safetensors.index.json");
    try {
        const SafetensorsModel model = SafetensorsModel::open(fuzz::scratch_dir());
        for (const std::string& name : model.tensor_names()) {
            const auto bytes = model.bytes(name);
            fuzz::checksum(bytes.data(), bytes.size());
        }
    } catch (const Error&) {
    }
    return 0;
}

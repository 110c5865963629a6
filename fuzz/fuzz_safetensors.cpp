// libFuzzer target: SafetensorsFile::open on arbitrary bytes (see docs/fuzzing.md).
#include <cstring>

#include "fuzz_file.h"
#include "greenmoe/core/error.h"
#include "greenmoe/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace greenmoe;
    const auto path = fuzz::write_input(data, size, "model.safetensors");
    try {
        const SafetensorsFile st = SafetensorsFile::open(path);
        // What open() promises: every tensor inside the data section, as long as its shape says.
        uint64_t header_len = 0;
        std::memcpy(&header_len, data, 8);
        const uint64_t data_size = size - 8 - header_len;
        for (const TensorInfo& t : st.tensors()) {
            fuzz::require(t.offset <= data_size && t.nbytes <= data_size - t.offset);
            fuzz::checksum(st.data(t), t.nbytes);
            if (t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16 ||
                t.dtype == DType::F64) {
                fuzz::require(st.read_f32(t.name).size() == static_cast<size_t>(t.numel()));
            }
        }
    } catch (const Error&) {
    }
    return 0;
}

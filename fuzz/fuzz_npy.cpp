// libFuzzer target: the .npy header parser on the input buffer itself (so AddressSanitizer
// sees a read past its end), then read_npy on it as a file (see docs/fuzzing.md).
#include "fuzz_file.h"
#include "greenmoe/core/error.h"
#include "greenmoe/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace greenmoe;
    const std::filesystem::path path = fuzz::scratch_dir() / "array.npy";
    try {
        const NpyHeader header =
            parse_npy_header(reinterpret_cast<const std::byte*>(data), size, path);
        fuzz::require(header.data_offset <= size);
    } catch (const Error&) {
    }
    fuzz::write_input(data, size, "array.npy");
    try {
        const NpyArray array = read_npy(path);
        fuzz::require(array.data.size() ==
                      static_cast<size_t>(array.numel()) * npy_item_size(array.descr, path));
        if (array.descr == "<f4" || array.descr == "<f8" || array.descr == "<f2") {
            fuzz::require(array.to_f32().size() == static_cast<size_t>(array.numel()));
        }
    } catch (const Error&) {
    }
    return 0;
}

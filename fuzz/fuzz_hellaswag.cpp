// libFuzzer target: the HellaSwag readers, the input read as .jsonl and as the 6-line text
// format (plain, or bzip2 when it starts with "BZh") (see docs/fuzzing.md).
#include "fuzz_file.h"
#include "greenmoe/core/error.h"
#include "greenmoe/eval/hellaswag_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace greenmoe;
    for (const char* name : {"hellaswag.jsonl", "hellaswag.txt"}) {
        const auto path = fuzz::write_input(data, size, name);
        try {
            for (const HellaSwagItem& item : read_hellaswag(path)) {
                fuzz::require(item.label >= 0 && item.label <= 3);
            }
        } catch (const Error&) {
        }
    }
    return 0;
}

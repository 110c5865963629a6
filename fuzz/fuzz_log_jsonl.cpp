// libFuzzer target: the log.jsonl readers: the torn-last-line check on the input buffer, the
// report's parse_run_log, and RunLog's rewrite on resume (see docs/fuzzing.md).
#include <string>
#include <string_view>

#include "fuzz_file.h"
#include "greenmoe/core/error.h"
#include "greenmoe/io/json_lines.h"
#include "greenmoe/report/run_data.h"
#include "greenmoe/train/run_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace greenmoe;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const JsonLinesText lines = without_torn_last_line(text, "log.jsonl");
        fuzz::require(lines.complete.size() <= size);
    } catch (const Error&) {
    }
    try {
        report::RunData run;
        report::parse_run_log(std::string(text), "log.jsonl", run);
    } catch (const Error&) {
    }
    const auto path = fuzz::write_input(data, size, "log.jsonl");
    try {
        const RunLog log(path, 1);
    } catch (const Error&) {
    }
    return 0;
}

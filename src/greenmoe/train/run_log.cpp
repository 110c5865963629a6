// RunLog (see run_log.h).
#include "greenmoe/train/run_log.h"

#include <unistd.h>

#include <sstream>
#include <string>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe {

RunLog::RunLog(std::filesystem::path path, int64_t keep_before_step) : path_(std::move(path)) {
    if (keep_before_step >= 0 && std::filesystem::exists(path_)) {
        std::istringstream in(read_file(path_));
        std::string line, kept;
        while (std::getline(in, line)) {
            const auto j = nlohmann::json::parse(line, nullptr, false);
            // A torn last line from a killed run is dropped with the rest past the save.
            if (j.is_discarded() || !j.is_object()) continue;
            if (j.contains("step") && j["step"].is_number_integer() &&
                j["step"].get<int64_t>() >= keep_before_step) {
                continue;
            }
            kept += line + "\n";
        }
        write_file_atomic(path_, kept);
    }
    file_ = std::fopen(path_.c_str(), "a");
    check(file_ != nullptr, "{}: cannot open for appending", path_.string());
}

RunLog::~RunLog() {
    if (file_) std::fclose(file_);
}

void RunLog::write(const nlohmann::json& record) {
    // Samples from a model can end inside a multi-byte character (a token holds bytes, not
    // characters): such bytes become U+FFFD instead of making the record unwritable.
    const std::string line =
        record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    check(std::fwrite(line.data(), 1, line.size(), file_) == line.size() && std::fflush(file_) == 0,
          "{}: write failed", path_.string());
}

}  // namespace greenmoe

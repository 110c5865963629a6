// RunLog (see run_log.h).
#include "greenmoe/train/run_log.h"

#include <sstream>
#include <string>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe {

RunLog::RunLog(std::filesystem::path path, int64_t resume_step) : path_(std::move(path)) {
    if (resume_step >= 0 && std::filesystem::exists(path_)) {
        const std::string text = read_file(path_);
        const JsonLinesText lines = without_torn_last_line(text, path_.string());
        warning_ = lines.warning;
        std::istringstream in{std::string(lines.complete)};
        std::string line, kept;
        int64_t line_no = 0;
        while (std::getline(in, line)) {
            ++line_no;
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            const auto j = nlohmann::json::parse(line, nullptr, false);
            check(!j.is_discarded() && j.is_object(),
                  "{}:{}: not a JSON object (a damaged log: repair or remove this line)",
                  path_.string(), line_no);
            if (j.contains("step") && j["step"].is_number_integer()) {
                const int64_t step = j["step"].get<int64_t>();
                const bool train = j.value("type", std::string()) == "train";
                if (train ? step > resume_step : step >= resume_step) continue;
            }
            kept += line + "\n";
        }
        write_file_atomic(path_, kept);
    }
    file_.emplace(path_);
}

void RunLog::write(const nlohmann::json& record) {
    // Samples from a model can end inside a multi-byte character (a token holds bytes, not
    // characters): such bytes become U+FFFD instead of making the record unwritable.
    file_->append(record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace greenmoe

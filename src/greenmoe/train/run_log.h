// log.jsonl: one JSON object per line, appended whole as it happens; on resume the lines
// past the checkpoint are dropped so a resumed run never repeats a step.
//
// Steps (log_version 2): a train record's step is the optimizer step just done, 1…N; a val,
// eval or sample record's step is the number of steps done when it was measured (0: the
// untrained model), so "step 10" is the same model in every record type.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "greenmoe/io/json_lines.h"

namespace greenmoe {

class RunLog {
  public:
    // Opens path for appending. If resume_step ≥ 0 (the checkpoint's step), first rewrites
    // the file (atomically) without what the resumed run logs again: train records of steps
    // after resume_step, and other records of resume_step and after (the measurements made
    // before the next update). A torn last line (a killed write) is dropped, with warning()
    // saying so; a malformed line before it is an Error naming the file and line.
    RunLog(std::filesystem::path path, int64_t resume_step);

    // One whole line per record (see LineAppender): a failed write leaves no torn line.
    void write(const nlohmann::json& record);

    // Non-empty when opening dropped a torn last line.
    const std::string& warning() const { return warning_; }

  private:
    std::filesystem::path path_;
    std::string warning_;
    std::optional<LineAppender> file_;
};

}  // namespace greenmoe

// log.jsonl: one JSON object per line, appended whole as it happens; on resume the lines
// past the checkpoint are dropped so a resumed run never repeats a step.
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
    // Opens path for appending. If keep_before_step ≥ 0, first rewrites the file
    // (atomically) keeping only the lines whose "step" is < keep_before_step. A torn last
    // line (a killed write) is dropped, with warning() saying so; a malformed line before
    // it is an Error naming the file and line.
    RunLog(std::filesystem::path path, int64_t keep_before_step);

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

// log.jsonl: one JSON object per line, appended and flushed as it happens; on resume the
// lines past the checkpoint are dropped so a resumed run never repeats a step.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

namespace greenmoe {

class RunLog {
  public:
    // Opens path for appending. If keep_before_step ≥ 0, first rewrites the file
    // (atomically) keeping only the lines whose "step" is < keep_before_step.
    RunLog(std::filesystem::path path, int64_t keep_before_step);
    ~RunLog();
    RunLog(const RunLog&) = delete;
    RunLog& operator=(const RunLog&) = delete;

    void write(const nlohmann::json& record);

  private:
    std::filesystem::path path_;
    FILE* file_ = nullptr;
};

}  // namespace greenmoe

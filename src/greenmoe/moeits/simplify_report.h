// What `simplify` says about a pruning: the summary.json it writes and the lines it prints.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "greenmoe/moeits/simplify.h"

namespace greenmoe::moeits {

// The key that marks a summary.json as written by `simplify` (what --overwrite may replace).
inline constexpr const char* kSimplifySummaryMarker = "greenmoe_simplify";

// `part` as a percentage of `whole` (0 when whole is 0).
double percent(int64_t part, int64_t whole);

// A report line: to options.log, else stdout.
void emit(const SimplifyOptions& options, const std::string& line);

// summary.json without the files and timings, which the writer fills in at the end.
nlohmann::json simplify_summary(const SimplifyOptions& options, const MoeModel& model,
                                const SimplifyResult& result,
                                const std::filesystem::path& cache_dir, bool need_nmi);

// The model and criterion before the work; the kept experts and sizes after.
void log_model(const SimplifyOptions& options, const MoeModel& model);
void log_outcome(const SimplifyOptions& options, const SimplifyResult& result, size_t files);

}  // namespace greenmoe::moeits

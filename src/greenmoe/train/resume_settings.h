// Resuming a run with other settings: which differences from the checkpoint's settings the
// user allowed (--resume-with-changes), for full and LoRA training alike.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "greenmoe/train/train_config.h"

namespace greenmoe {

// The differences between the checkpoint's settings (`saved`) and this run's (`now`) that
// `allowed` (sections or section.key, from --resume-with-changes) names. Any other
// difference is a UsageError naming each key with both values, and so is any difference in
// a setting `fixed` says a resume can never change; `fixed_means` says, for that message,
// what those settings fix (e.g. "the model or the data each step sees").
std::vector<ConfigChange> check_resume_settings(
    const nlohmann::json& saved, const nlohmann::json& now, const std::filesystem::path& checkpoint,
    const std::vector<std::string>& allowed, const std::function<bool(const std::string&)>& fixed,
    std::string_view fixed_means);

// Every --resume-with-changes entry names a setting of `config`: a section or section.key.
// The error calls them `what` ("setting", "setting of a LoRA run") and gives
// `example_section` as a section one may name.
void check_setting_names(const std::vector<std::string>& names, const nlohmann::json& config,
                         std::string_view what, std::string_view example_section);

}  // namespace greenmoe

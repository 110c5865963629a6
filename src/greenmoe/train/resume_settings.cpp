// Resuming with other settings (see resume_settings.h).
#include "greenmoe/train/resume_settings.h"

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace {

bool listed(const std::vector<std::string>& allowed, const std::string& key) {
    for (const std::string& a : allowed) {
        if (a == key || key.starts_with(a + ".")) return true;
    }
    return false;
}

}  // namespace

std::vector<ConfigChange> check_resume_settings(
    const nlohmann::json& saved, const nlohmann::json& now, const std::filesystem::path& checkpoint,
    const std::vector<std::string>& allowed, const std::function<bool(const std::string&)>& fixed,
    std::string_view fixed_means) {
    std::vector<ConfigChange> accepted, refused, never;
    for (ConfigChange& c : config_changes(saved, now)) {
        if (fixed(c.key)) {
            never.push_back(std::move(c));
        } else if (listed(allowed, c.key)) {
            accepted.push_back(std::move(c));
        } else {
            refused.push_back(std::move(c));
        }
    }
    if (refused.empty() && never.empty()) return accepted;
    std::string message = checkpoint.string();
    message += ": cannot resume, the settings differ from this checkpoint's: ";
    if (!refused.empty()) {
        std::string keys;
        for (const ConfigChange& c : refused) keys += " " + c.key;
        message += describe_changes(refused);
        message += " (to resume with the new values, pass --resume-with-changes";
        message += keys;
        message += ")";
    }
    if (!never.empty()) {
        if (!refused.empty()) message += "; ";
        message += describe_changes(never);
        message += " (these fix ";
        message += fixed_means;
        message += " and cannot change)";
    }
    message += "; or start over with --no-resume, or use another --out";
    throw UsageError(message);
}

void check_setting_names(const std::vector<std::string>& names, const nlohmann::json& config,
                         std::string_view what, std::string_view example_section) {
    for (const std::string& name : names) {
        const auto dot = name.find('.');
        const std::string section = name.substr(0, dot);
        const bool known =
            config.contains(section) &&
            (dot == std::string::npos ||
             (config[section].is_object() && config[section].contains(name.substr(dot + 1))));
        usage_check(known,
                    "--resume-with-changes {}: no such {} (expected section.key, e.g. "
                    "train.max_steps, or a section such as {})",
                    name, what, example_section);
    }
}

}  // namespace greenmoe

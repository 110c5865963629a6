// Output paths checked when a command starts, so that an hour of work is not lost to a
// folder that cannot be written at the end.
#pragma once

#include <filesystem>
#include <string>

namespace greenmoe {

// `path` will be written as a file: an existing one must be a writable file, and its folder
// (or, where folders are still to be created, the nearest existing one) a writable folder.
// Throws UsageError naming `option` and the path.
void check_output_file(const std::filesystem::path& path, const std::string& option);
// The same for a folder the command creates or writes into.
void check_output_folder(const std::filesystem::path& path, const std::string& option);

}  // namespace greenmoe

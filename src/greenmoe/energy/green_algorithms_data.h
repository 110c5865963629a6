// The Green Algorithms CSV tables embedded in the library at build time (see CMakeLists.txt).
#pragma once

#include <string_view>
#include <vector>

namespace greenmoe {

// The bytes of one embedded table, by file name ("CI_aggregated.csv"); empty when that
// file was not embedded. The text is exactly the file under data/green-algorithms/.
std::string_view embedded_green_algorithms_csv(std::string_view file_name);
// Names of the embedded files.
std::vector<std::string_view> embedded_green_algorithms_files();
// The project version from CMake (written to emissions.csv's codecarbon_version column).
std::string_view embedded_greenmoe_version();

}  // namespace greenmoe

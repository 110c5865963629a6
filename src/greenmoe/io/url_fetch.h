// Downloading one URL to a file with the system's curl (https://, and file:// for tests and
// local mirrors), run directly without a shell so that no path or URL is ever interpreted.
#pragma once

#include <filesystem>
#include <string>

namespace greenmoe {

// Writes the body of `url` to `out` (created or replaced). True on success; false when curl is
// missing, the server answers with an error status (curl -f), the transfer fails or takes
// longer than max_seconds. On false `out` may hold a partial body: callers download to a
// temporary name and rename only what they have checked.
bool fetch_url(const std::string& url, const std::filesystem::path& out, int max_seconds);

}  // namespace greenmoe

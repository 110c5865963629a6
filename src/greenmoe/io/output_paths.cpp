// Writability of output paths before work starts (see output_paths.h).
#include "greenmoe/io/output_paths.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "greenmoe/core/error.h"

namespace greenmoe {

namespace fs = std::filesystem;

namespace {

// The nearest existing folder at or above `dir` must accept new entries (write and search
// permission, as open(O_CREAT) and mkdir need).
void check_parent_writable(const fs::path& path, const std::string& option) {
    fs::path dir = fs::absolute(path).lexically_normal().parent_path();
    std::error_code ec;
    while (!dir.empty() && !fs::exists(dir, ec)) {
        const fs::path up = dir.parent_path();
        if (up == dir) break;
        dir = up;
    }
    usage_check(fs::is_directory(dir, ec), "{} {}: {} is not a folder", option, path.string(),
                dir.string());
    usage_check(::access(dir.c_str(), W_OK | X_OK) == 0, "{} {}: cannot write in {} ({})", option,
                path.string(), dir.string(), std::strerror(errno));
}

}  // namespace

void check_output_file(const fs::path& path, const std::string& option) {
    usage_check(!path.empty(), "{}: empty path", option);
    std::error_code ec;
    if (fs::exists(path, ec)) {
        usage_check(!fs::is_directory(path, ec), "{} {}: is a folder, expected a file name", option,
                    path.string());
        usage_check(::access(path.c_str(), W_OK) == 0, "{} {}: cannot be written ({})", option,
                    path.string(), std::strerror(errno));
    }
    check_parent_writable(path, option);
}

void check_output_folder(const fs::path& path, const std::string& option) {
    usage_check(!path.empty(), "{}: empty path", option);
    std::error_code ec;
    if (fs::exists(path, ec)) {
        usage_check(fs::is_directory(path, ec), "{} {}: is a file, expected a folder", option,
                    path.string());
        usage_check(::access(path.c_str(), W_OK | X_OK) == 0, "{} {}: cannot write in it ({})",
                    option, path.string(), std::strerror(errno));
        return;
    }
    check_parent_writable(path, option);
}

}  // namespace greenmoe

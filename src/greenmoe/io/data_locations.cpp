// Data, cache and tokenizer folders (see data_locations.h).
#include "greenmoe/io/data_locations.h"

#include <cstdlib>

namespace greenmoe {

namespace fs = std::filesystem;

DataLocations resolve_data_locations(DataLocations given) {
    if (given.data_dir.empty()) {
        if (const char* env = std::getenv("GREENMOE_DATA"); env && *env) given.data_dir = env;
    }
    if (given.cache_dir.empty()) {
        if (const char* env = std::getenv("GREENMOE_CACHE"); env && *env) {
            given.cache_dir = env;
        } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
            given.cache_dir = fs::path(xdg) / "greenmoe";
        } else if (const char* home = std::getenv("HOME"); home && *home) {
            given.cache_dir = fs::path(home) / ".cache" / "greenmoe";
        } else {
            given.cache_dir = fs::temp_directory_path() / "greenmoe-cache";
        }
    }
    return given;
}

}  // namespace greenmoe

// Named datasets greenmoe can fetch and prepare by itself (tinyshakespeare), and the
// folders it looks in before downloading.
#pragma once

#include <filesystem>
#include <string>

#include "greenmoe/io/data_locations.h"

namespace greenmoe {

struct ShardPatterns {
    std::string train;
    std::string val;
};

// For a named dataset: finds its raw file in data_dir (or the cache, or downloads it
// with curl and checks its SHA-256), tokenizes it into <cache>/data/<name>/ once, and
// returns the shard patterns. Throws Error listing what was tried.
ShardPatterns prepare_named_dataset(const std::string& name, const DataLocations& where);

// A raw text file of a named dataset, as found or fetched (used by tests and prepare).
std::filesystem::path find_or_fetch_raw_dataset(const std::string& name,
                                                const DataLocations& where);

}  // namespace greenmoe

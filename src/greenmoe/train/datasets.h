// Named datasets greenmoe can fetch and prepare by itself (tinyshakespeare), and the
// folders it looks in before downloading.
#pragma once

#include <filesystem>
#include <string>

namespace greenmoe {

struct DataLocations {
    std::filesystem::path data_dir;   // --data-dir, else $GREENMOE_DATA (may be empty)
    std::filesystem::path cache_dir;  // --cache-dir, else $GREENMOE_CACHE, else ~/.cache/greenmoe
    std::filesystem::path tokenizer_dir;  // folder with encoder.json and vocab.bpe
};

// Fills empty fields from the environment and defaults.
DataLocations resolve_data_locations(DataLocations given);

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

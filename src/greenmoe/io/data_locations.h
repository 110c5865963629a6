// Where greenmoe looks for data, downloads and tokenizer files: the folders every layer
// that reads user data (training, evaluation) resolves the same way.
#pragma once

#include <filesystem>

namespace greenmoe {

struct DataLocations {
    std::filesystem::path data_dir;   // --data-dir, else $GREENMOE_DATA (may be empty)
    std::filesystem::path cache_dir;  // --cache-dir, else $GREENMOE_CACHE, else ~/.cache/greenmoe
    std::filesystem::path tokenizer_dir;  // folder with encoder.json and vocab.bpe
};

// Fills empty fields from the environment and defaults.
DataLocations resolve_data_locations(DataLocations given);

}  // namespace greenmoe

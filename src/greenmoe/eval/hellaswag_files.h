// Where the HellaSwag validation file comes from: a path the user gives, a data folder, the
// cache, or a download of the public file.
#pragma once

#include <filesystem>

#include "greenmoe/io/data_locations.h"

namespace greenmoe {

// rowanz/hellaswag's validation split, the raw jsonl (10,042 items).
inline constexpr const char* kHellaSwagUrl =
    "https://raw.githubusercontent.com/rowanz/hellaswag/master/data/hellaswag_val.jsonl";
inline constexpr size_t kHellaSwagValItems = 10042;

// `given` may name a file (.jsonl, .txt, .txt.bz2) or a folder; empty means: look in
// where.data_dir (hellaswag_val.jsonl, hellaswag_val_full.txt.bz2 / .txt, also under a
// hellaswag/ subfolder), then <cache>/data/hellaswag_val.jsonl, then download the public
// jsonl with curl into the cache (kept only if it parses to all 10,042 items). Throws Error
// listing what was tried.
std::filesystem::path find_or_fetch_hellaswag(const std::filesystem::path& given,
                                              const DataLocations& where);

}  // namespace greenmoe

// Downloading one split of a Hugging Face hub data set into the cache, each file checked
// against the SHA-256 the hub publishes for it (its Git LFS object id) before it is kept.
#pragma once

#include <filesystem>
#include <string>

#include "greenmoe/eval/tasks/task_files.h"

namespace greenmoe::tasks {

// The hub's address: $HF_ENDPOINT as huggingface_hub reads it, else https://huggingface.co.
std::string hub_endpoint();
// False when $HF_HUB_OFFLINE is set to 1/true/yes/on (huggingface_hub's switch).
bool hub_downloads_allowed();

// Lists the split's Parquet files through the hub's tree API
// (<endpoint>/api/datasets/<repo>/tree/<revision>/<folder>): first the repository's own files
// (<config>/<split>-*.parquet, data/ for a "default" configuration), else the conversion
// branch refs/convert/parquet (<config>/<split>/*.parquet). Downloads each from
// <endpoint>/datasets/<repo>/resolve/<revision>/<path> to a temporary name, checks its size
// and SHA-256 against the listing's lfs.size and lfs.oid, then moves it to
// <data_dir>/<repo>/<path> (the layout find_task_file reads), the first shard last so that an
// interrupted download is never taken for a whole split. Returns the first shard.
// Throws Error naming the repository, the URL and, for a file that fails its check, the
// expected and the actual checksum; `task` prefixes the messages.
std::filesystem::path download_hub_split(const std::string& task, const HubSplit& hub,
                                         const std::filesystem::path& data_dir);

}  // namespace greenmoe::tasks

// Hugging Face model folders of safetensors shards: validated reading through mmap, and
// atomic, memory-bounded writing shard by shard (with model.safetensors.index.json).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "greenmoe/io/safetensors.h"

namespace greenmoe {

// Hugging Face's default max_shard_size ("5GB", decimal).
constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000ULL;

// "5GB", "500MB", "1.5GiB", "64KiB", "1000" (bytes): decimal units for KB/MB/GB/TB as Hugging
// Face uses them, binary for KiB/MiB/GiB/TiB. `option` names the option in the error.
uint64_t parse_byte_size(const std::string& text, const std::string& option);
std::string format_byte_size(uint64_t bytes);  // "4.2 GB"

// A model's tensors spread over one or more safetensors files, all memory-mapped.
class SafetensorsModel {
  public:
    // `path` is a folder holding model.safetensors.index.json (sharded) or model.safetensors,
    // or one .safetensors file. An index is validated: a JSON object with a "weight_map" of
    // {tensor: file}, every file a plain name inside the folder that exists and holds the
    // tensors mapped to it, no tensor in two files, no shard tensor left out of the map.
    static SafetensorsModel open(const std::filesystem::path& path);

    const std::filesystem::path& dir() const { return dir_; }
    // The index file for a sharded model, else the single .safetensors file.
    const std::filesystem::path& source() const { return source_; }
    bool sharded() const { return sharded_; }
    // The index's "metadata" object (an empty object for a single file).
    const nlohmann::json& index_metadata() const { return index_metadata_; }
    const std::vector<SafetensorsFile>& shards() const { return shards_; }
    // The "__metadata__" of the first shard (greenmoe stores its config there).
    const std::map<std::string, std::string>& metadata() const {
        return shards_.front().metadata();
    }

    // Every tensor name: shards in index order, each in file order.
    const std::vector<std::string>& tensor_names() const { return names_; }
    const TensorInfo* find(const std::string& name) const;  // null if absent
    const TensorInfo& get(const std::string& name) const;   // throws Error naming the model
    const SafetensorsFile& file_of(const std::string& name) const;
    // The stored bytes of a tensor, for byte-identical copies.
    std::span<const std::byte> bytes(const std::string& name) const;
    // A tensor (F32, F16, BF16 or F64) converted to float.
    std::vector<float> read_f32(const std::string& name) const;
    void read_f32_into(const std::string& name, float* out) const;
    // Tells the kernel the tensor's pages are not needed soon, so that scanning a model
    // larger than memory does not keep every page resident in this process.
    void release(const std::string& name) const;

    int64_t total_parameters() const;  // Σ numel over every tensor

    SafetensorsModel(SafetensorsModel&&) noexcept = default;
    SafetensorsModel& operator=(SafetensorsModel&&) noexcept = default;

  private:
    SafetensorsModel() = default;
    std::filesystem::path dir_, source_;
    bool sharded_ = false;
    nlohmann::json index_metadata_ = nlohmann::json::object();
    std::vector<SafetensorsFile> shards_;
    std::vector<std::string> names_;
    std::unordered_map<std::string, size_t> shard_of_;  // tensor name → index in shards_
};

// One tensor to write: its bytes are the concatenation of `pieces` (usually spans into an
// input model's mmap), so slicing rows or experts out of a tensor never copies it whole.
struct OutputTensor {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    std::vector<std::span<const std::byte>> pieces;
    uint64_t nbytes() const;
};

struct ModelFolderWriteOptions {
    uint64_t max_shard_bytes = kDefaultMaxShardBytes;  // a larger tensor gets a shard alone
    bool single_file = false;                          // model.safetensors whatever the size
    bool overwrite = false;                            // replace an existing non-empty folder
    // Never written over (nor a folder containing it): the model being read.
    std::filesystem::path input;
    // Entries that may already be in `out` without --overwrite (e.g. a cache the same run
    // filled); they are replaced with the rest.
    std::vector<std::string> replaceable_entries;
    std::map<std::string, std::string> shard_metadata;         // "__metadata__" of every shard
    nlohmann::json index_metadata = nlohmann::json::object();  // besides total_size
    std::optional<nlohmann::json> config;                      // written as config.json
    // Called with the staging folder before it is renamed into place, to add more files.
    std::function<void(const std::filesystem::path& staging)> add_files;
    bool show_progress = false;
};

// True for the files of a model folder that hold weights in some format (safetensors and
// their index, PyTorch, TensorFlow, Flax, GGUF, ONNX, NumPy archives): what a tool writing a
// changed model must not copy beside its own weights.
bool is_weight_file_name(const std::string& name);

struct ModelFolderWritten {
    std::vector<std::string> files;  // shard file names, in order
    uint64_t tensor_bytes = 0;
};

// Throws Error unless `out` may receive a model: it is not `input`, does not contain
// `input`, and is absent, empty, holds only `replaceable` entries, or overwrite is set.
void check_model_output(const std::filesystem::path& out, const std::filesystem::path& input,
                        bool overwrite, const std::vector<std::string>& replaceable = {});

// Writes the tensors (in the given order) into shards of at most max_shard_bytes
// (model-00001-of-0000N.safetensors + model.safetensors.index.json, or model.safetensors
// when one shard suffices), config.json and the add_files extras into a staging folder
// beside `out`, then renames it into place (the old folder is removed only after the new one
// is complete). Memory use is one copy buffer, whatever the model size.
ModelFolderWritten write_model_folder(const std::filesystem::path& out,
                                      const std::vector<OutputTensor>& tensors,
                                      const ModelFolderWriteOptions& options);

}  // namespace greenmoe

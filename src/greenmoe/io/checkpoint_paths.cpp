// Finding checkpoint folders (see checkpoint_paths.h).
#include "greenmoe/io/checkpoint_paths.h"

#include <string>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe {

namespace fs = std::filesystem;

std::optional<fs::path> latest_checkpoint(const fs::path& run_dir) {
    const fs::path pointer = run_dir / "checkpoints" / "latest";
    if (!fs::exists(pointer)) return std::nullopt;
    std::string name = read_file(pointer);
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
    const fs::path dir = run_dir / "checkpoints" / name;
    check(!name.empty() && name.find('/') == std::string::npos && fs::is_directory(dir),
          "{}: names '{}', which is not a checkpoint folder", pointer.string(), name);
    return dir;
}

fs::path resolve_checkpoint_weights(const fs::path& path) {
    if (fs::is_regular_file(path)) return path;
    if (fs::is_regular_file(path / "model.safetensors")) return path / "model.safetensors";
    if (auto latest = latest_checkpoint(path)) return *latest / "model.safetensors";
    fail(
        "{}: not a checkpoint (expected a weights .safetensors, a checkpoint folder, or a run "
        "folder with checkpoints/latest)",
        path.string());
}

}  // namespace greenmoe

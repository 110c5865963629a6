// Checkpoint folders (see checkpoint.h).
#include "greenmoe/train/checkpoint.h"

#include <unistd.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <algorithm>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/gpt_weights.h"

namespace greenmoe {

namespace fs = std::filesystem;

namespace {

constexpr int kStateVersion = 1;
// A save is written into checkpoints/.tmp_step_N_PID, then renamed to step_N.
const std::string kTempPrefix = ".tmp_";

void fsync_dir(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

std::string step_dir_name(int64_t step) {
    return fmt::format("step_{:08d}", step);
}

}  // namespace

fs::path publish_checkpoint(const fs::path& run_dir, int64_t step, int keep,
                            const std::function<void(const fs::path& tmp_dir)>& write) {
    const fs::path root = run_dir / "checkpoints";
    fs::create_directories(root);
    const fs::path final_dir = root / step_dir_name(step);
    const fs::path tmp_dir =
        root / (kTempPrefix + step_dir_name(step) + "_" + std::to_string(getpid()));
    fs::remove_all(tmp_dir);
    fs::create_directories(tmp_dir);
    write(tmp_dir);
    fsync_dir(tmp_dir);

    // A save of the same step (a rerun after a crash) replaces the old one.
    fs::remove_all(final_dir);
    fs::rename(tmp_dir, final_dir);
    fsync_dir(root);
    write_file_atomic(root / "latest", final_dir.filename().string() + "\n");

    std::vector<fs::path> saves;
    for (const auto& entry : fs::directory_iterator(root)) {
        const std::string name = entry.path().filename().string();
        if (entry.is_directory() && name.starts_with("step_")) saves.push_back(entry.path());
    }
    std::sort(saves.begin(), saves.end());
    for (size_t i = 0; i + static_cast<size_t>(keep) < saves.size(); ++i) {
        if (saves[i] != final_dir) fs::remove_all(saves[i]);
    }
    return final_dir;
}

std::vector<TensorToWrite> adam_moment_tensors(const ParamLayout& layout, const AdamW& optimizer) {
    std::vector<TensorToWrite> moments;
    for (const ParamSpec& s : layout.specs()) {
        moments.push_back({"m." + s.name, DType::F32, s.shape, optimizer.m() + s.offset});
        moments.push_back({"v." + s.name, DType::F32, s.shape, optimizer.v() + s.offset});
    }
    return moments;
}

fs::path save_checkpoint(const fs::path& run_dir, const GptModel& model, const AdamW& optimizer,
                         const TrainState& state, int keep) {
    return publish_checkpoint(run_dir, state.step, keep, [&](const fs::path& tmp_dir) {
        save_gpt_weights(tmp_dir / "model.safetensors", model);
        std::vector<TensorToWrite> moments = adam_moment_tensors(model.layout(), optimizer);
        // The loss-free balancing bias is optimizer state too: not learned by gradient.
        // Unpruned models store it [num_moe_layers, E]; pruned ones, whose rows differ in
        // length, as the flat concatenation of the rows.
        if (model.num_moe_layers() > 0) {
            moments.push_back(
                {kMoeBiasTensor, DType::F32, model.moe_bias_shape(), model.moe_bias()});
        }
        write_safetensors(tmp_dir / "optimizer.safetensors", moments,
                          {{"adam_step", std::to_string(optimizer.step_count())}});
        const nlohmann::json j = {
            {"version", kStateVersion},
            {"step", state.step},
            {"data",
             {{"shard", state.data.shard},
              {"offset", state.data.offset},
              {"epoch", state.data.epoch}}},
            {"tokens_seen", state.tokens_seen},
            {"train_seconds", state.train_seconds},
            {"adam_step", optimizer.step_count()},
            // Every random draw is a pure function of (seed, step, micro-step, layer, token),
            // so the seed and the step are the whole generator state.
            {"rng",
             {{"scheme", "counter-based splitmix64"},
              {"seed", state.config.at("train").at("seed")}}},
            {"config", state.config},
            {"extra", state.extra},
        };
        write_file_atomic(tmp_dir / "state.json", j.dump(2) + "\n");
    });
}

int remove_unfinished_checkpoints(const fs::path& run_dir) {
    const fs::path root = run_dir / "checkpoints";
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return 0;
    std::vector<fs::path> stale;
    for (const auto& entry : fs::directory_iterator(root)) {
        if (entry.path().filename().string().starts_with(kTempPrefix))
            stale.push_back(entry.path());
    }
    for (const fs::path& p : stale) {
        fs::remove_all(p, ec);
        check(!ec, "{}: cannot remove this unfinished checkpoint save: {}", p.string(),
              ec.message());
    }
    return static_cast<int>(stale.size());
}

TrainState read_train_state(const fs::path& checkpoint_dir) {
    const fs::path file = checkpoint_dir / "state.json";
    const auto j = nlohmann::json::parse(read_file(file), nullptr, false);
    check(!j.is_discarded() && j.is_object(), "{}: not a JSON object (truncated or corrupt?)",
          file.string());
    TrainState s;
    try {
        check(j.at("version").get<int>() == kStateVersion, "{}: unsupported version {}",
              file.string(), j.at("version").dump());
        s.step = j.at("step").get<int64_t>();
        s.data.shard = j.at("data").at("shard").get<size_t>();
        s.data.offset = j.at("data").at("offset").get<size_t>();
        s.data.epoch = j.at("data").at("epoch").get<uint64_t>();
        s.tokens_seen = j.at("tokens_seen").get<int64_t>();
        s.train_seconds = j.at("train_seconds").get<double>();
        s.config = j.at("config");
        if (j.contains("extra")) s.extra = j.at("extra");
    } catch (const nlohmann::json::exception& e) {
        fail("{}: missing or malformed field ({})", file.string(), e.what());
    }
    check(s.step >= 0, "{}: negative step", file.string());
    return s;
}

TrainState load_checkpoint(const fs::path& checkpoint_dir, GptModel& model, AdamW* optimizer) {
    TrainState state = read_train_state(checkpoint_dir);
    load_gpt_weights(checkpoint_dir / "model.safetensors", model);
    if (optimizer) {
        const fs::path path = checkpoint_dir / "optimizer.safetensors";
        const SafetensorsFile file = SafetensorsFile::open(path);
        for (const ParamSpec& s : model.layout().specs()) {
            file.read_f32_into("m." + s.name, optimizer->m() + s.offset, s.shape);
            file.read_f32_into("v." + s.name, optimizer->v() + s.offset, s.shape);
        }
        if (model.num_moe_layers() > 0) {
            file.read_f32_into(kMoeBiasTensor, model.moe_bias(), model.moe_bias_shape());
        }
        auto it = file.metadata().find("adam_step");
        check(it != file.metadata().end(), "{}: no 'adam_step' metadata", path.string());
        try {
            optimizer->set_step_count(std::stoll(it->second));
        } catch (const std::exception&) {
            fail("{}: 'adam_step' metadata '{}' is not an integer", path.string(), it->second);
        }
    }
    return state;
}

}  // namespace greenmoe

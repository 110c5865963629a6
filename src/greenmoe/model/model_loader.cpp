// Finding and loading greenmoe or Hugging Face GPT-2 models (see model_loader.h).
#include "greenmoe/model/model_loader.h"

#include "greenmoe/core/error.h"
#include "greenmoe/io/checkpoint_paths.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/gpt_weights.h"

namespace greenmoe {

namespace fs = std::filesystem;

namespace {

bool is_hf_folder(const fs::path& path) {
    return fs::is_directory(path) && fs::is_regular_file(path / "config.json") &&
           fs::is_regular_file(path / "model.safetensors") && !fs::exists(path / "state.json") &&
           !fs::exists(path / "checkpoints");
}

}  // namespace

ModelSource find_model_source(const fs::path& path) {
    check(fs::exists(path),
          "{}: no such file or folder (expected a run folder, checkpoint folder, simplified "
          "model folder, model.safetensors or Hugging Face GPT-2 folder)",
          path.string());
    if (is_hf_folder(path)) return {path, false};
    const fs::path weights = resolve_checkpoint_weights(path);
    return {weights, SafetensorsFile::open(weights).metadata().count("greenmoe.model") > 0};
}

GptConfig read_model_config(const ModelSource& source) {
    return source.greenmoe ? read_gpt_weights_config(source.weights)
                           : read_hf_gpt2_config(source.weights);
}

void load_model_weights(const ModelSource& source, GptModel& model) {
    if (!source.greenmoe) {
        load_hf_gpt2_weights(source.weights, model);
        return;
    }
    load_gpt_weights(source.weights, model);
    // A checkpoint keeps the loss-free balancing bias with its optimizer state; it steers
    // routing, so evaluation and fine-tuning need it too.
    const fs::path optimizer = source.weights.parent_path() / "optimizer.safetensors";
    if (model.num_moe_layers() > 0 && fs::is_regular_file(optimizer)) {
        const SafetensorsFile file = SafetensorsFile::open(optimizer);
        if (file.find(kMoeBiasTensor) != nullptr) {
            file.read_f32_into(kMoeBiasTensor, model.moe_bias(), model.moe_bias_shape());
        }
    }
}

std::unique_ptr<GptModel> load_model(const fs::path& path, int max_batch, int max_seq) {
    const ModelSource source = find_model_source(path);
    const GptConfig config = read_model_config(source);
    auto model =
        std::make_unique<GptModel>(config, max_batch, max_seq > 0 ? max_seq : config.block_size);
    load_model_weights(source, *model);
    model->set_training(false);
    return model;
}

}  // namespace greenmoe

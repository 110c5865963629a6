// load_model: greenmoe checkpoints or Hugging Face GPT-2 weights (see model_loader.h).
#include "greenmoe/model/model_loader.h"

#include "greenmoe/core/error.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/train/checkpoint.h"

namespace greenmoe {

namespace fs = std::filesystem;

namespace {

bool is_hf_folder(const fs::path& path) {
    return fs::is_directory(path) && fs::is_regular_file(path / "config.json") &&
           fs::is_regular_file(path / "model.safetensors") && !fs::exists(path / "state.json") &&
           !fs::exists(path / "checkpoints");
}

}  // namespace

std::unique_ptr<GptModel> load_model(const fs::path& path, int max_batch, int max_seq) {
    check(fs::exists(path),
          "{}: no such file or folder (expected a run folder, checkpoint "
          "folder, model.safetensors or Hugging Face GPT-2 folder)",
          path.string());
    std::unique_ptr<GptModel> model;
    bool greenmoe_weights = false;
    fs::path weights;
    if (!is_hf_folder(path)) {
        weights = resolve_checkpoint_weights(path);
        greenmoe_weights = SafetensorsFile::open(weights).metadata().count("greenmoe.model") > 0;
    }
    if (greenmoe_weights) {
        const GptConfig config = read_gpt_weights_config(weights);
        model = std::make_unique<GptModel>(config, max_batch,
                                           max_seq > 0 ? max_seq : config.block_size);
        load_gpt_weights(weights, *model);
        // The loss-free balancing bias is kept with the optimizer state of a checkpoint; it
        // steers routing, so evaluation needs it too.
        const fs::path optimizer = weights.parent_path() / "optimizer.safetensors";
        if (model->num_moe_layers() > 0 && fs::is_regular_file(optimizer)) {
            const SafetensorsFile file = SafetensorsFile::open(optimizer);
            if (file.find("moe_bias") != nullptr) {
                file.read_f32_into("moe_bias", model->moe_bias(), model->moe_bias_shape());
            }
        }
    } else {
        const fs::path hf = weights.empty() ? path : weights;
        const GptConfig config = read_hf_gpt2_config(hf);
        model = std::make_unique<GptModel>(config, max_batch,
                                           max_seq > 0 ? max_seq : config.block_size);
        load_hf_gpt2_weights(hf, *model);
    }
    model->set_training(false);
    return model;
}

}  // namespace greenmoe

// libFuzzer target: the configuration JSON readers, the input read as a training preset
// (load_config_json + train_config_from_json, as `greenmoe train --config` does) and as a
// Hugging Face config.json (see docs/fuzzing.md).
#include "fuzz_file.h"
#include "greenmoe/core/error.h"
#include "greenmoe/hf/hf_config.h"
#include "greenmoe/train/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace greenmoe;
    const auto path = fuzz::write_input(data, size, "config.json");
    try {
        const TrainConfig config = train_config_from_json(load_config_json(path.string(), {}));
        fuzz::require(config.model.n_layer >= 1);
    } catch (const Error&) {
    }
    try {
        const hf::ModelConfig config = hf::read_model_config(path);
        fuzz::require(config.layers.size() == static_cast<size_t>(config.num_layers));
    } catch (const Error&) {
    }
    return 0;
}

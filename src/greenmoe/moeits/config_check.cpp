// Tensors against their model's config before simplify writes (see config_check.h).
#include "greenmoe/moeits/config_check.h"

#include <set>
#include <unordered_map>

#include "greenmoe/core/error.h"
#include "greenmoe/core/shape_text.h"
#include "greenmoe/hf/architectures.h"
#include "greenmoe/hf/hf_config.h"
#include "greenmoe/hf/hf_weights.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/model/gpt_weights.h"
#include "greenmoe/moeits/model_adapter.h"

namespace greenmoe::moeits {

using Json = nlohmann::json;

void check_hf_tensors(const std::vector<TensorInfo>& tensors, const Json& config,
                      const std::string& where) {
    const std::string model_type = config.value("model_type", std::string());
    // DeepSeek-MoE (V1) has no engine description yet; its expert tensors are still checked
    // one by one by the pruning adapter.
    if (hf::find_architecture(model_type) == nullptr) return;
    const hf::ModelConfig model = hf::parse_model_config(without_routing_groups(config), where);
    hf::check_weight_shapes(tensors, where, model);
}

void check_greenmoe_tensors(const std::vector<TensorInfo>& tensors, const Json& config,
                            const std::string& where) {
    GptConfig gpt;
    from_json(config, gpt);
    gpt.finalize();
    std::unordered_map<std::string, const TensorInfo*> by_name;
    for (const TensorInfo& t : tensors) by_name[t.name] = &t;
    std::set<std::string> expected;
    const auto expect = [&](const std::string& name, const std::vector<int64_t>& shape) {
        expected.insert(name);
        const auto it = by_name.find(name);
        check(it != by_name.end(), "{}: tensor '{}' {} is missing (the model config needs it)",
              where, name, shape_text(shape));
        const TensorInfo& t = *it->second;
        check(t.shape == shape, "{}: tensor '{}' has shape {}, the model config needs {}", where,
              name, shape_text(t.shape), shape_text(shape));
        check(t.dtype == DType::F32, "{}: tensor '{}' has dtype {}, greenmoe models store F32",
              where, name, dtype_name(t.dtype));
    };
    const ParamLayout layout = gpt_param_layout(gpt);
    for (const ParamSpec& s : layout.specs()) expect(s.name, s.shape);
    if (by_name.count(kMoeBiasTensor)) expect(kMoeBiasTensor, gpt.moe_bias_shape());
    for (const TensorInfo& t : tensors) {
        check(expected.count(t.name) == 1,
              "{}: unexpected tensor '{}' (the model config does not have it)", where, t.name);
    }
}

}  // namespace greenmoe::moeits

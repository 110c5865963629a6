// Special tokens and model detection for the text tasks (see hf_text.h).
#include "greenmoe/eval/hf_text.h"

#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/hf/architectures.h"
#include "greenmoe/io/atomic_file.h"

namespace greenmoe {

bool is_hf_engine_model(const std::filesystem::path& path) {
    const auto config = path / "config.json";
    if (!std::filesystem::is_regular_file(config)) return false;
    const auto j = nlohmann::json::parse(read_file(config), nullptr, false);
    if (!j.is_object() || !j.contains("model_type") || !j["model_type"].is_string()) return false;
    return hf::find_architecture(j["model_type"].get<std::string>()) != nullptr;
}

std::vector<int32_t> bos_prefix(const hf::Tokenizer& tokenizer) {
    const auto bos = tokenizer.bos_id();
    if (!bos) return {};
    const auto with = tokenizer.encode("a", true);
    const auto without = tokenizer.encode("a", false);
    const bool added =
        !with.empty() && with.front() == *bos && (without.empty() || without.front() != *bos);
    if (!added) return {};
    return {static_cast<int32_t>(*bos)};
}

int32_t empty_context_token(const hf::HfModel& model, const hf::Tokenizer& tokenizer) {
    if (tokenizer.bos_id()) return *tokenizer.bos_id();
    if (tokenizer.eos_id()) return *tokenizer.eos_id();
    const auto& eos = model.config().eos_token_ids;
    check(!eos.empty(),
          "{}: an empty context needs a start token, and neither the tokenizer ({}) nor the "
          "model has a bos or eos token",
          model.config().source.string(), tokenizer.source());
    return eos.front();
}

}  // namespace greenmoe

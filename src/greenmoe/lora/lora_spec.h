// The LoRA settings a training run adapts a Hugging Face model with, as `--lora` spells them
// ("r=64,alpha=16,dropout=0.1,targets=q_proj,k_proj,v_proj,o_proj") and as PEFT's LoraConfig
// names them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace greenmoe::lora {

struct LoraSpec {
    int64_t rank = 8;      // r
    double alpha = 8.0;    // lora_alpha
    double dropout = 0.0;  // lora_dropout: on the adapter's input only, as PEFT applies it
    bool rslora = false;   // use_rslora: scale alpha / sqrt(r) instead of alpha / r
    // Module names as Hugging Face spells them; a target matches a module whose name equals it
    // or ends in "." + it (PEFT's rule). "all-linear": every linear module of the blocks.
    std::vector<std::string> targets;

    double scale() const;  // alpha / r, or alpha / sqrt(r)
    // "r=64,alpha=16,dropout=0.1,rslora=false,targets=q_proj,k_proj" (parse_lora_spec's input).
    std::string to_string() const;
};

// Parses the --lora value: comma-separated key=value pairs (r, alpha, dropout, rslora) and
// targets=NAME[,NAME…] (every item after targets= without '=' is one more target). Defaults:
// r=8, alpha=r, dropout=0; targets are required. A bad key or value throws UsageError naming
// --lora and what was expected.
LoraSpec parse_lora_spec(const std::string& text);

}  // namespace greenmoe::lora

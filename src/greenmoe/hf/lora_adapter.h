// A PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, as
// PeftModel.save_pretrained writes them), read and checked for applying to a Hugging Face model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace greenmoe::hf {

// The low-rank update of one linear module: W' = W + scale · B · A.
struct LoraModule {
    std::string module;    // "model.layers.0.self_attn.q_proj"
    int64_t rank = 0;      // r
    int64_t in = 0;        // A: [rank, in]
    int64_t out = 0;       // B: [out, rank]
    std::vector<float> a;  // row-major [rank, in]
    std::vector<float> b;  // row-major [out, rank]
    double scale = 0.0;    // lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora
};

struct LoraAdapter {
    std::filesystem::path dir;
    std::string base_model;           // base_model_name_or_path, as written
    std::vector<LoraModule> modules;  // in the order of the file's tensor names
};

// Reads a PEFT LoRA adapter folder. peft_type must be LORA; settings greenmoe does not apply
// (DoRA, LoRA biases, fan_in_fan_out, modules_to_save, target_parameters, embedding adapters,
// trainable tokens) are refused by name rather than ignored. rank_pattern / alpha_pattern are
// honoured (a key applies to a module named by it or ending in "." + it). Every module needs
// both its lora_A and lora_B, of matching rank. Errors name the file and the key or tensor.
LoraAdapter read_lora_adapter(const std::filesystem::path& dir);

// A folder holding adapter_config.json and no config.json: an adapter given where a model is
// expected, to be run on its base (as PEFT's AutoPeftModelForCausalLM does).
bool is_lora_adapter_folder(const std::filesystem::path& dir);
// The adapter a folder given as a model stands for: the folder itself when it is one, else
// a LoRA training run's (`train --lora`) finished adapter RUN/adapter or, before it has one,
// its latest checkpoint; none for any other folder.
std::optional<std::filesystem::path> find_lora_adapter(const std::filesystem::path& dir);
// The adapter's base_model_name_or_path as a local folder (as given, from the working
// directory); Error naming it when it is not one here (a hub id: pass the base's folder with
// --model and the adapter with --adapter).
std::filesystem::path lora_adapter_base(const std::filesystem::path& dir);

}  // namespace greenmoe::hf

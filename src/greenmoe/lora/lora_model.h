// LoRA training of a Hugging Face model: the forward pass of the inference engine's
// architectures with every targeted linear module adapted (y = x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ),
// the causal-LM loss, and the backward pass to the adapters. The base weights stay frozen in
// their stored dtype; activations are kept per block (each block recomputed in the backward
// pass), so memory stays near the weights plus one block's activations.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/hf/hf_model.h"
#include "greenmoe/hf/rope.h"
#include "greenmoe/lora/instruction_data.h"
#include "greenmoe/lora/lora_params.h"

namespace greenmoe::lora {

// rows sequences of seq_len tokens, row-major. As transformers' causal LMs take them, labels
// are aligned with ids and shifted inside: position t predicts labels[t + 1].
struct TokenBatch {
    int64_t rows = 0, seq_len = 0;
    std::vector<int32_t> ids, labels;
    int64_t predicted_tokens() const;  // labels[t + 1] != kIgnoreLabel, t < seq_len − 1
};

struct LossSum {
    double sum = 0.0;    // Σ cross-entropy (nats) over the predicted tokens
    int64_t tokens = 0;  // how many
};

class LoraModel {
  public:
    // `model` and `params` must outlive this. dropout: lora_dropout (0: none).
    LoraModel(const hf::HfModel& model, LoraParams& params, double dropout);

    // Adds loss_scale · d(Σ CE)/d(adapters) to params.grads() (so loss_scale = 1 / the step's
    // predicted tokens gives the mean's gradient over micro-batches) and returns Σ CE. Routing
    // is chosen in the forward pass and held; its weights carry gradient (router adapters
    // learn). dropout_key makes the dropout masks of this call (same key, same masks).
    LossSum forward_backward(const TokenBatch& batch, double loss_scale, uint64_t dropout_key);
    // The loss alone (no dropout, no gradient).
    LossSum loss(const TokenBatch& batch) const;

  private:
    const hf::HfModel& model_;
    LoraParams& params_;
    double dropout_;
    hf::Rope rope_;
};

}  // namespace greenmoe::lora

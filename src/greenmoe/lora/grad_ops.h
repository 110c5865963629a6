// The operations of LoRA training with their backward passes: products with frozen weights
// in their stored dtype, adapted linear modules, RMSNorm, the silu gate and causal attention.
// Backward functions add their input gradients into the output buffers (dx +=), so that a
// tensor read by several operations collects all of its gradient.
#pragma once

#include <cstdint>
#include <vector>

#include "greenmoe/hf/hf_weights.h"
#include "greenmoe/lora/lora_params.h"

namespace greenmoe::lora {

// dx[n, w.cols] += dy[n, w.rows] · w: the input gradient of y = x · wᵀ.
void linear_input_grad(const float* dy, int64_t n, const hf::Mat& w, float* dx);

// An adapted linear module: y = x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ (no adapter: the plain product).
// What its backward pass needs besides x: the dropped input (when dropout is on) and
// u = drop(x)·Aᵀ.
struct LinearTape {
    std::vector<float> dropped, u;
};
class AdaptedLinear {
  public:
    // target: the adapter (null: none), of which w is rows [row0, row0 + w.rows); params: its
    // values and gradients; dropout p with the masks named by key: element j of row i is
    // drawn at counter token·in + j, token = tokens[i] (null: i), so that a token's mask does
    // not depend on which other tokens share the call (an expert's rows).
    AdaptedLinear(const hf::Mat& w, const std::vector<float>& bias, const LoraTarget* target,
                  int64_t row0, LoraParams* params, double dropout, uint64_t key)
        : w_(w),
          bias_(bias),
          target_(target),
          row0_(row0),
          params_(params),
          dropout_(dropout),
          key_(key) {}
    AdaptedLinear& with_tokens(const int64_t* tokens) {
        tokens_ = tokens;
        return *this;
    }

    // y [n, out]. tape: null when no backward pass follows.
    void forward(const float* x, int64_t n, float* y, LinearTape* tape) const;
    // dx [n, in] += the input gradient; the adapter's gradients accumulate in params.
    void backward(const float* x, const float* dy, int64_t n, const LinearTape& tape,
                  float* dx) const;

  private:
    const hf::Mat& w_;
    const std::vector<float>& bias_;
    const LoraTarget* target_;
    int64_t row0_;
    LoraParams* params_;
    double dropout_;
    uint64_t key_;
    const int64_t* tokens_ = nullptr;

    bool kept(int64_t i, int64_t j, int64_t in, float keep) const;
};

// y = x / rms(x) · weight over n rows of dim values (strides sx, sy); inv[n] keeps 1/rms.
void rms_norm_forward(const float* x, int64_t n, int64_t dim, int64_t sx,
                      const std::vector<float>& weight, double eps, float* y, int64_t sy,
                      float* inv);
// dx += the input gradient of rms_norm_forward, given its x and inv.
void rms_norm_backward(const float* x, const float* inv, const float* dy, int64_t n, int64_t dim,
                       int64_t sx, int64_t sdy, const std::vector<float>& weight, float* dx,
                       int64_t sdx);

// act = silu(g) · u; backward: dg, du (written) from dact.
void silu_gate_backward(const float* g, const float* u, const float* dact, int64_t count, float* dg,
                        float* du);

// Causal self-attention of one sequence of t positions (from 0): q [t, hq, kd], k [t, hkv,
// kd], v [t, hkv, vd] → out [t, hq, vd]; query head h reads key/value head h / (hq / hkv).
// probs [hq, t, t] keeps the attention weights for the backward pass.
struct AttentionShape {
    int64_t t, hq, hkv, kd, vd;
    double scale;
    int window;  // 0: full causal
};
void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       float* out, float* probs);
// dq, dk, dv += the gradients, given dout [t, hq, vd].
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const float* probs, const float* dout, float* dq, float* dk, float* dv);

}  // namespace greenmoe::lora

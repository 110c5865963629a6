// LoRA merging (see lora_merge.h).
#include "greenmoe/hf/lora_merge.h"

#include <cblas.h>

#include "greenmoe/core/error.h"

namespace greenmoe::hf {

std::vector<float> merged_matrix(const Mat& base, const LoraModule& module) {
    std::vector<float> w(static_cast<size_t>(base.rows * base.cols));
    for (int64_t r = 0; r < base.rows; ++r) base.read_row(r, w.data() + r * base.cols);
    // w += scale · B [out, rank] · A [rank, in]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(module.out),
                static_cast<int>(module.in), static_cast<int>(module.rank),
                static_cast<float>(module.scale), module.b.data(), static_cast<int>(module.rank),
                module.a.data(), static_cast<int>(module.in), 1.0f, w.data(),
                static_cast<int>(module.in));
    return w;
}

const Mat& find_lora_target(const ModelWeights& weights, const LoraAdapter& adapter,
                            const LoraModule& module) {
    const std::string name = module.module + ".weight";
    for (const auto& [n, mat] : weights.named) {
        if (n != name) continue;
        check(mat.rows == module.out && mat.cols == module.in,
              "{}: the update of '{}' is [{}, {}], the model's '{}' is [{}, {}]",
              adapter.dir.string(), module.module, module.out, module.in, name, mat.rows, mat.cols);
        return mat;
    }
    fail(
        "{}: target module '{}' is not one of the model's linear weights (none is named '{}'; "
        "stacked expert tensors cannot be targeted one module at a time)",
        adapter.dir.string(), module.module, name);
}

}  // namespace greenmoe::hf

// LoRA merging (see lora_merge.h).
#include "greenmoe/hf/lora_merge.h"

#include <cblas.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "greenmoe/core/error.h"
#include "greenmoe/core/half.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/io/atomic_file.h"

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

namespace {

// The merged values in `dtype`, as bytes.
std::vector<std::byte> stored_as(const std::vector<float>& values, DType dtype) {
    std::vector<std::byte> out(values.size() * dtype_size(dtype));
    if (dtype == DType::F32) {
        std::memcpy(out.data(), values.data(), out.size());
        return out;
    }
    auto* h = reinterpret_cast<uint16_t*>(out.data());
    for (size_t i = 0; i < values.size(); ++i) {
        h[i] = dtype == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
    }
    return out;
}

}  // namespace

ModelFolderWritten write_merged_model(const std::filesystem::path& base_dir,
                                      const LoraAdapter& adapter, const std::filesystem::path& out,
                                      ModelFolderWriteOptions options) {
    namespace fs = std::filesystem;
    // The engine's view checks the base against its config and finds each target.
    const HfModel model = HfModel::load(base_dir);
    const SafetensorsModel tensors = SafetensorsModel::open(base_dir);
    std::map<std::string, std::vector<std::byte>> merged;  // tensor name → merged bytes
    for (const LoraModule& m : adapter.modules) {
        const Mat& target = find_lora_target(model.weights(), adapter, m);
        merged[m.module + ".weight"] = stored_as(merged_matrix(target, m), target.dtype);
    }
    std::vector<OutputTensor> out_tensors;
    for (const std::string& name : tensors.tensor_names()) {
        const TensorInfo& t = tensors.get(name);
        OutputTensor o{name, t.dtype, t.shape, {}};
        const auto it = merged.find(name);
        if (it != merged.end()) {
            o.pieces.emplace_back(it->second.data(), it->second.size());
        } else {
            o.pieces.push_back(tensors.bytes(name));
        }
        out_tensors.push_back(std::move(o));
    }
    options.input = base_dir;
    options.config = nlohmann::json::parse(read_file(base_dir / "config.json"));
    options.add_files = [&](const fs::path& staging) {
        for (const auto& entry : fs::directory_iterator(base_dir)) {
            const std::string name = entry.path().filename().string();
            if (!entry.is_regular_file() || is_weight_file_name(name) || name == "config.json") {
                continue;
            }
            fs::copy_file(entry.path(), staging / name);
        }
    };
    return write_model_folder(out, out_tensors, options);
}

}  // namespace greenmoe::hf

// BF16 and F16 weight files run in place (converted tile by tile) and give the logits of the
// same rounded values stored as F32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <string>
#include <vector>

#include "greenmoe/core/half.h"
#include "greenmoe/hf/hf_model.h"
#include "greenmoe/io/safetensors.h"
#include "test_support.h"

namespace greenmoe::hf {
namespace {

namespace fs = std::filesystem;
using greenmoe::testing::TempDir;

// Writes the fixture's tensors stored as `dtype` into dir/model.safetensors, and the same
// rounded values as F32 into rounded/model.safetensors; both folders get its config.
void write_rounded(const std::string& name, DType dtype, const fs::path& dir,
                   const fs::path& rounded) {
    const fs::path src = greenmoe::testing::shared_data() / "hf-fixtures";
    const auto in = SafetensorsFile::open(src / ("tiny_" + name + ".safetensors"));
    std::vector<std::vector<uint16_t>> halves;
    std::vector<std::vector<float>> floats;
    halves.reserve(in.tensors().size());
    floats.reserve(in.tensors().size());
    std::vector<TensorToWrite> stored, as_f32;
    for (const auto& t : in.tensors()) {
        const std::vector<float> v = in.read_f32(t.name);
        std::vector<uint16_t> h(v.size());
        std::vector<float> back(v.size());
        for (size_t i = 0; i < v.size(); ++i) {
            h[i] = dtype == DType::BF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
            back[i] = dtype == DType::BF16 ? bf16_to_f32(h[i]) : f16_to_f32(h[i]);
        }
        halves.push_back(std::move(h));
        floats.push_back(std::move(back));
        stored.push_back({t.name, dtype, t.shape, halves.back().data()});
        as_f32.push_back({t.name, DType::F32, t.shape, floats.back().data()});
    }
    for (const auto& d : {dir, rounded}) {
        fs::create_directories(d);
        fs::copy_file(src / ("tiny_" + name + "_config.json"), d / "config.json");
    }
    write_safetensors(dir / "model.safetensors", stored);
    write_safetensors(rounded / "model.safetensors", as_f32);
}

class HfDtype : public ::testing::TestWithParam<std::string> {};

TEST_P(HfDtype, HalfWeightsEqualTheirF32Values) {
    for (const DType dtype : {DType::BF16, DType::F16}) {
        TempDir tmp;
        write_rounded(GetParam(), dtype, tmp / "half", tmp / "f32");
        const HfModel half = HfModel::load(tmp / "half");
        const HfModel f32 = HfModel::load(tmp / "f32");
        EXPECT_EQ(half.weights().embed.dtype, dtype);
        std::vector<int32_t> ids;
        for (int i = 0; i < 16; ++i) ids.push_back((i * 3 + 2) % half.config().vocab_size);
        const std::vector<float> want = f32.logits(ids);
        // The values are equal; the products are not done alike (fp32 weight panels for 16
        // rows of half weights, sgemm for fp32 ones), so sums of the same terms differ in
        // their order: fp32 rounding relative to the logits' size.
        double scale = 1.0;
        for (const float v : want) scale = std::max(scale, double(std::fabs(v)));
        EXPECT_LE(greenmoe::testing::max_abs_diff(half.logits(ids), want.data()), 1e-5 * scale)
            << GetParam() << " " << dtype_name(dtype) << ", logits up to " << scale;
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfDtype,
                         ::testing::Values("llama", "qwen3_moe", "deepseek_v2", "granitemoeshared"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace greenmoe::hf

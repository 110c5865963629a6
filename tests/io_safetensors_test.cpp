// Tests of safetensors reading and writing (io/safetensors.h): round trips, the real
// tiny GPT-2 fixture, and malformed files that must each be refused with a clear message.
#include "greenmoe/io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/core/half.h"
#include "greenmoe/io/atomic_file.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
using testing::TempDir;

std::string u64_le(uint64_t v) {
    std::string s(8, '\0');
    std::memcpy(s.data(), &v, 8);
    return s;
}

// A safetensors file from raw parts: header text and data section.
void write_raw(const std::filesystem::path& path, const std::string& header,
               const std::string& data) {
    write_file_atomic(path, u64_le(header.size()) + header + data);
}

std::string open_error(const std::filesystem::path& path) {
    return error_message([&] { SafetensorsFile::open(path); });
}

TEST(IoSafetensors, DTypeNamesAndSizes) {
    const std::vector<std::pair<DType, size_t>> expected = {
        {DType::F64, 8}, {DType::F32, 4}, {DType::F16, 2}, {DType::BF16, 2}, {DType::I64, 8},
        {DType::I32, 4}, {DType::I16, 2}, {DType::I8, 1},  {DType::U8, 1},   {DType::BOOL, 1}};
    const std::vector<std::string> names = {"F64", "F32", "F16", "BF16", "I64",
                                            "I32", "I16", "I8",  "U8",   "BOOL"};
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(dtype_name(expected[i].first), names[i]);
        EXPECT_EQ(dtype_size(expected[i].first), expected[i].second) << names[i];
        EXPECT_EQ(dtype_from_name(names[i]), expected[i].first);
    }
    EXPECT_THAT(error_message([] { dtype_from_name("F8_E4M3"); }), HasSubstr("'F8_E4M3'"));
    EXPECT_THAT(error_message([] { dtype_from_name("f32"); }), HasSubstr("unknown dtype"));
}

TEST(IoSafetensors, RoundTripKeepsNamesOrderShapesDtypesBytesAndMetadata) {
    TempDir dir;
    std::vector<float> f32(2 * 3);
    std::iota(f32.begin(), f32.end(), -2.5f);
    const std::vector<double> f64 = {1e300, -0.125};
    const std::vector<uint16_t> f16 = {f32_to_f16(1.0f), f32_to_f16(-2.5f), f32_to_f16(65504.0f)};
    const std::vector<int64_t> i64 = {-1, std::numeric_limits<int64_t>::max()};
    const std::vector<int8_t> i8 = {-128, 0, 127};
    const std::vector<uint8_t> boolean = {1, 0, 1, 1};
    const float scalar = 42.0f;
    // Deliberately not in alphabetical order: the file must keep the given order.
    const std::vector<TensorToWrite> tensors = {
        {"z.weight", DType::F32, {2, 3}, f32.data()},  {"b.f64", DType::F64, {2}, f64.data()},
        {"a.half", DType::F16, {3, 1}, f16.data()},    {"m.i64", DType::I64, {1, 2}, i64.data()},
        {"empty", DType::F32, {0, 5}, nullptr},        {"c.i8", DType::I8, {3}, i8.data()},
        {"mask", DType::BOOL, {2, 2}, boolean.data()}, {"scalar", DType::F32, {}, &scalar},
    };
    const std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                         {"greenmoe", "step 12 \"quoted\" é"}};
    const auto path = dir / "model.safetensors";
    write_safetensors(path, tensors, metadata);

    const SafetensorsFile file = SafetensorsFile::open(path);
    EXPECT_EQ(file.path(), path);
    EXPECT_EQ(file.metadata(), metadata);
    ASSERT_EQ(file.tensors().size(), tensors.size());
    size_t offset = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorInfo& t = file.tensors()[i];
        SCOPED_TRACE(tensors[i].name);
        EXPECT_EQ(t.name, tensors[i].name);
        EXPECT_EQ(t.dtype, tensors[i].dtype);
        EXPECT_EQ(t.shape, tensors[i].shape);
        const int64_t numel =
            std::accumulate(t.shape.begin(), t.shape.end(), int64_t{1}, std::multiplies<>());
        EXPECT_EQ(t.numel(), numel);
        EXPECT_EQ(t.nbytes, static_cast<size_t>(numel) * dtype_size(t.dtype));
        EXPECT_EQ(t.offset, offset);  // contiguous, in the given order
        offset += t.nbytes;
        if (t.nbytes > 0) {
            EXPECT_EQ(std::memcmp(file.data(t), tensors[i].data, t.nbytes), 0);
        }
        EXPECT_EQ(file.find(t.name), &t);
        EXPECT_EQ(&file.get(t.name), &t);
    }
    EXPECT_EQ(file.find("absent"), nullptr);
    EXPECT_EQ(file.read_f32("z.weight", {2, 3}), f32);
    EXPECT_EQ(file.read_f32("scalar"), std::vector<float>{42.0f});
    EXPECT_TRUE(file.read_f32("empty", {0, 5}).empty());

    // Layout as the reference writes it: u64 length, header padded to 8 bytes, data.
    const std::string bytes = read_file(path);
    uint64_t header_len = 0;
    std::memcpy(&header_len, bytes.data(), 8);
    EXPECT_EQ(header_len % 8, 0u);
    EXPECT_EQ(bytes.size(), 8 + header_len + offset);
}

TEST(IoSafetensors, HeaderIsCompactJsonPaddedWithSpaces) {
    TempDir dir;
    const std::vector<float> a = {1.0f, 2.0f};
    const std::vector<uint16_t> b = {7};
    write_safetensors(dir / "t.safetensors",
                      {{"a", DType::F32, {2}, a.data()}, {"b", DType::BF16, {1, 1}, b.data()}});
    const std::string bytes = read_file(dir / "t.safetensors");
    const std::string json = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"BF16","shape":[1,1],"data_offsets":[8,10]}})";
    const size_t padded = (json.size() + 7) / 8 * 8;
    ASSERT_EQ(bytes.size(), 8 + padded + 10);
    EXPECT_EQ(bytes.substr(0, 8), u64_le(padded));
    EXPECT_EQ(bytes.substr(8, padded), json + std::string(padded - json.size(), ' '));
    // No "__metadata__" key when there is no metadata.
    EXPECT_EQ(bytes.find("__metadata__"), std::string::npos);
}

TEST(IoSafetensors, MetadataComesFirstWhenPresent) {
    TempDir dir;
    const float x = 1.0f;
    write_safetensors(dir / "t.safetensors", {{"x", DType::F32, {1}, &x}}, {{"k", "v"}});
    const std::string bytes = read_file(dir / "t.safetensors");
    EXPECT_EQ(bytes.substr(8, 28), R"({"__metadata__":{"k":"v"},"x)");
}

TEST(IoSafetensors, WriteRejectsDuplicateAndReservedNames) {
    TempDir dir;
    const float x = 1.0f;
    EXPECT_THAT(error_message([&] {
                    write_safetensors(dir / "t.safetensors",
                                      {{"x", DType::F32, {1}, &x}, {"x", DType::F32, {1}, &x}});
                }),
                HasSubstr("'x' appears twice"));
    EXPECT_THAT(
        error_message([&] {
            write_safetensors(dir / "t.safetensors", {{"__metadata__", DType::F32, {1}, &x}});
        }),
        HasSubstr("__metadata__"));
    EXPECT_THAT(error_message([&] {
                    write_safetensors(dir / "t.safetensors", {{"n", DType::F32, {-1}, &x}});
                }),
                HasSubstr("invalid shape [-1]"));
    EXPECT_FALSE(std::filesystem::exists(dir / "t.safetensors"));
}

TEST(IoSafetensors, ReadF32ConvertsHalfBfloatAndDouble) {
    TempDir dir;
    const std::vector<float> values = {1.0f, -2.5f, 0.099975586f, 65504.0f, -0.0f, 0.5f};
    std::vector<uint16_t> f16, bf16;
    std::vector<double> f64;
    for (const float v : values) {
        f16.push_back(f32_to_f16(v));
        bf16.push_back(f32_to_bf16(v));
        f64.push_back(static_cast<double>(v));
    }
    const std::vector<int32_t> ints = {1, 2, 3, 4, 5, 6};
    write_safetensors(dir / "t.safetensors", {{"h", DType::F16, {2, 3}, f16.data()},
                                              {"b", DType::BF16, {2, 3}, bf16.data()},
                                              {"d", DType::F64, {2, 3}, f64.data()},
                                              {"i", DType::I32, {2, 3}, ints.data()}});
    const SafetensorsFile file = SafetensorsFile::open(dir / "t.safetensors");
    std::vector<float> expected_bf16;
    for (const uint16_t b : bf16) expected_bf16.push_back(bf16_to_f32(b));
    EXPECT_EQ(file.read_f32("h", {2, 3}), values);  // every value is exact in F16
    EXPECT_EQ(file.read_f32("b", {2, 3}), expected_bf16);
    EXPECT_EQ(expected_bf16[1], -2.5f);
    EXPECT_EQ(file.read_f32("d"), values);
    std::vector<float> out(6);
    file.read_f32_into("d", out.data(), {2, 3});
    EXPECT_EQ(out, values);

    const std::string wrong_shape = error_message([&] { file.read_f32("h", {3, 2}); });
    EXPECT_THAT(wrong_shape, HasSubstr("'h' has shape [2, 3], expected [3, 2]"));
    EXPECT_THAT(error_message([&] { file.read_f32("i"); }), HasSubstr("dtype I32"));
    EXPECT_THAT(error_message([&] { file.get("nope"); }), HasSubstr("no tensor named 'nope'"));
}

TEST(IoSafetensors, ReadsTheTinyGpt2Fixture) {
    const auto path = testing::shared_data() / "hf-fixtures" / "tiny_gpt2.safetensors";
    const SafetensorsFile file = SafetensorsFile::open(path);
    EXPECT_EQ(file.tensors().size(), 30u);
    EXPECT_EQ(file.tensors()[0].name, "wte.weight");  // file order, not alphabetical
    EXPECT_EQ(file.tensors()[1].name, "wpe.weight");
    const TensorInfo& w = file.get("h.0.attn.c_attn.weight");
    EXPECT_EQ(w.dtype, DType::F32);
    EXPECT_EQ(w.shape, (std::vector<int64_t>{8, 24}));
    EXPECT_EQ(w.offset, 928u);
    EXPECT_EQ(w.nbytes, 8u * 24 * 4);
    EXPECT_EQ(file.get("wte.weight").shape, (std::vector<int64_t>{11, 8}));
    EXPECT_EQ(file.get("wpe.weight").shape, (std::vector<int64_t>{16, 8}));

    // Compare with the bytes read directly: u64 header length, header, then the data.
    const std::string raw = read_file(path);
    uint64_t header_len = 0;
    std::memcpy(&header_len, raw.data(), 8);
    const std::vector<float> got = file.read_f32("h.0.attn.c_attn.weight", {8, 24});
    std::vector<float> expected(8 * 24);
    std::memcpy(expected.data(), raw.data() + 8 + header_len + 928, expected.size() * 4);
    EXPECT_EQ(got, expected);
    EXPECT_TRUE(std::any_of(got.begin(), got.end(), [](float v) { return v != 0.0f; }));
}

TEST(IoSafetensors, OtherHfFixturesOpen) {
    for (const char* name : {"tiny_mixtral", "tiny_qwen3_moe", "tiny_deepseek_v2"}) {
        const auto path =
            testing::shared_data() / "hf-fixtures" / (std::string(name) + ".safetensors");
        const SafetensorsFile file = SafetensorsFile::open(path);
        EXPECT_GT(file.tensors().size(), 10u) << name;
    }
}

TEST(IoSafetensors, MovedFileKeepsItsData) {
    TempDir dir;
    const std::vector<float> x = {3.0f, 4.0f};
    write_safetensors(dir / "t.safetensors", {{"x", DType::F32, {2}, x.data()}});
    std::vector<SafetensorsFile> files;
    files.push_back(SafetensorsFile::open(dir / "t.safetensors"));
    files.push_back(SafetensorsFile::open(dir / "t.safetensors"));
    SafetensorsFile moved = std::move(files[0]);
    files.clear();
    EXPECT_EQ(moved.read_f32("x"), x);
}

TEST(IoSafetensors, GapsAndOutOfOrderOffsetsAreAccepted) {
    TempDir dir;
    const auto path = dir / "t.safetensors";
    std::string data(24, '\0');
    const float one = 1.0f, two = 2.0f;
    std::memcpy(data.data() + 16, &one, 4);
    std::memcpy(data.data() + 0, &two, 4);
    write_raw(path,
              R"({"first":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},)"
              R"("second":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
              data);
    const SafetensorsFile file = SafetensorsFile::open(path);
    EXPECT_EQ(file.tensors()[0].name, "first");
    EXPECT_EQ(file.read_f32("first"), std::vector<float>{1.0f});
    EXPECT_EQ(file.read_f32("second"), std::vector<float>{2.0f});
}

// ---- malformed files: each must be refused with a message naming the file and the problem.

class IoSafetensorsMalformed : public ::testing::Test {
  protected:
    std::string error_for(const std::string& header, const std::string& data) {
        write_raw(path_, header, data);
        const std::string message = open_error(path_);
        EXPECT_THAT(message, HasSubstr(path_.string()));
        return message;
    }
    TempDir dir_;
    std::filesystem::path path_ = dir_ / "bad.safetensors";
};

TEST_F(IoSafetensorsMalformed, HeaderLengthLargerThanTheFile) {
    write_file_atomic(path_, u64_le(1000) + R"({"a":{}})");
    const std::string message = open_error(path_);
    EXPECT_THAT(message, HasSubstr("header length 1000 bytes is larger than the rest of the file"));
    EXPECT_THAT(message, HasSubstr(path_.string()));
}

TEST_F(IoSafetensorsMalformed, AbsurdHeaderLength) {
    write_file_atomic(path_, u64_le(~uint64_t{0}) + std::string(16, ' '));
    EXPECT_THAT(open_error(path_), HasSubstr("larger than the rest of the file"));
}

TEST_F(IoSafetensorsMalformed, FileTooShortOrEmpty) {
    write_file_atomic(path_, "abc");
    EXPECT_THAT(open_error(path_), HasSubstr("too short to be a safetensors file (3 bytes"));
    write_file_atomic(path_, "");
    EXPECT_THAT(open_error(path_), HasSubstr("(0 bytes"));
}

TEST_F(IoSafetensorsMalformed, MissingFile) {
    const std::string message = open_error(dir_ / "absent.safetensors");
    EXPECT_THAT(message, HasSubstr((dir_ / "absent.safetensors").string()));
    EXPECT_THAT(message, HasSubstr("No such file"));
}

TEST_F(IoSafetensorsMalformed, HeaderNotJson) {
    EXPECT_THAT(error_for(R"({"a": {"dtype": "F32",)", ""), HasSubstr("header is not valid JSON"));
    EXPECT_THAT(error_for("", ""), HasSubstr("header is not valid JSON"));
}

TEST_F(IoSafetensorsMalformed, HeaderNotAnObject) {
    EXPECT_THAT(error_for("[1, 2, 3]", ""),
                HasSubstr("header is a JSON array, expected an object"));
    EXPECT_THAT(error_for(R"({"a": [1, 2]})", ""),
                HasSubstr("tensor 'a': header entry is a JSON array, expected an object"));
}

TEST_F(IoSafetensorsMalformed, UnknownDtype) {
    const std::string message =
        error_for(R"({"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", "abcd");
    EXPECT_THAT(message, HasSubstr("tensor 'a': unknown dtype 'F8_E4M3'"));
    EXPECT_THAT(error_for(R"({"a":{"dtype":4,"shape":[4],"data_offsets":[0,4]}})", "abcd"),
                HasSubstr("'dtype' is a JSON number, expected a string"));
}

TEST_F(IoSafetensorsMalformed, ShapeTimesDtypeSizeDiffersFromByteLength) {
    // 2 × 3 F16 values are 12 bytes, but the offsets span 24 (as if F32 was meant).
    const std::string message = error_for(
        R"({"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,24]}})", std::string(24, '\0'));
    EXPECT_THAT(message,
                HasSubstr("tensor 'w': shape [2, 3] of F16 (2 bytes each) needs 12 bytes"));
    EXPECT_THAT(message, HasSubstr("span 24 bytes"));
}

TEST_F(IoSafetensorsMalformed, OffsetsOutOfBounds) {
    const std::string message = error_for(
        R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", std::string(16, '\0'));
    EXPECT_THAT(message,
                HasSubstr("tensor 'w': data_offsets [8, 24] lie outside the data section of 16"));
    EXPECT_THAT(error_for(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})",
                          std::string(16, '\0')),
                HasSubstr("data_offsets [8, 4] end before they begin"));
}

TEST_F(IoSafetensorsMalformed, OverlappingTensors) {
    const std::string message =
        error_for(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},)"
                  R"("c":{"dtype":"F32","shape":[3],"data_offsets":[12,24]}})",
                  std::string(32, '\0'));
    EXPECT_THAT(message, HasSubstr("tensors 'a' (bytes 0..16) and 'c' (bytes 12..24) overlap"));
}

TEST_F(IoSafetensorsMalformed, NegativeOrNonIntegerShape) {
    EXPECT_THAT(error_for(R"({"w":{"dtype":"F32","shape":[-2,2],"data_offsets":[0,16]}})",
                          std::string(16, '\0')),
                HasSubstr("tensor 'w': negative dimension -2"));
    EXPECT_THAT(error_for(R"({"w":{"dtype":"F32","shape":[2.0,2],"data_offsets":[0,16]}})",
                          std::string(16, '\0')),
                HasSubstr("'shape' holds a JSON number (2.0), expected non-negative integers"));
    EXPECT_THAT(error_for(R"({"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}})",
                          std::string(16, '\0')),
                HasSubstr("'shape' is a JSON string, expected an array"));
}

TEST_F(IoSafetensorsMalformed, ShapeProductOverflows) {
    EXPECT_THAT(
        error_for(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})",
                  std::string(16, '\0')),
        HasSubstr("needs more than 2^64 bytes"));
}

TEST_F(IoSafetensorsMalformed, TruncatedFile) {
    std::vector<float> w(64, 1.0f);
    write_safetensors(path_, {{"w", DType::F32, {8, 8}, w.data()}});
    std::filesystem::resize_file(path_, std::filesystem::file_size(path_) - 10);
    const std::string message = open_error(path_);
    EXPECT_THAT(message, HasSubstr("tensor 'w': data_offsets [0, 256] lie outside the data "
                                   "section of 246 bytes (truncated file?)"));
    EXPECT_THAT(message, HasSubstr(path_.string()));
}

TEST_F(IoSafetensorsMalformed, MissingOrMalformedDataOffsets) {
    EXPECT_THAT(error_for(R"({"w":{"dtype":"F32","shape":[1]}})", "abcd"),
                HasSubstr("tensor 'w': missing 'data_offsets'"));
    EXPECT_THAT(error_for(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "abcd"),
                HasSubstr("'data_offsets' is [0], expected [begin, end]"));
    EXPECT_THAT(error_for(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "abcd"),
                HasSubstr("expected [begin, end] of non-negative integers"));
    EXPECT_THAT(error_for(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd"),
                HasSubstr("tensor 'w': missing 'dtype'"));
    EXPECT_THAT(error_for(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"),
                HasSubstr("tensor 'w': missing 'shape'"));
    EXPECT_THAT(
        error_for(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", "abcd"),
        HasSubstr("unexpected key 'extra'"));
}

TEST_F(IoSafetensorsMalformed, BadMetadata) {
    EXPECT_THAT(error_for(R"({"__metadata__":{"format":1}})", ""),
                HasSubstr("'__metadata__' value of 'format' is a JSON number, expected a string"));
    EXPECT_THAT(error_for(R"({"__metadata__":["pt"]})", ""),
                HasSubstr("'__metadata__' is a JSON array, expected an object"));
}

TEST_F(IoSafetensorsMalformed, DuplicateTensorName) {
    EXPECT_THAT(error_for(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                          R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          std::string(8, '\0')),
                HasSubstr("header names 'w' twice"));
}

}  // namespace
}  // namespace greenmoe

// Hugging Face model folders: sharded reading, index validation, atomic sharded writing.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "greenmoe/core/half.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/io/safetensors_model.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::error_message;
using testing::TempDir;

// Three tensors in three dtypes, values depending on `salt`.
struct Tensors {
    std::vector<float> a;     // F32 [4, 3]
    std::vector<uint16_t> b;  // BF16 [5]
    std::vector<uint16_t> c;  // F16 [2, 2]
    explicit Tensors(float salt) {
        for (int i = 0; i < 12; ++i) a.push_back(salt + 0.25f * i);
        for (int i = 0; i < 5; ++i) b.push_back(f32_to_bf16(salt - 1.5f * i));
        for (int i = 0; i < 4; ++i) c.push_back(f32_to_f16(salt * 0.5f + i));
    }
};

// A model of two shards: shard 1 holds x.a, x.b; shard 2 holds y.a, y.c.
void write_sharded(const fs::path& dir, const Tensors& t1, const Tensors& t2) {
    fs::create_directories(dir);
    write_safetensors(
        dir / "model-00001-of-00002.safetensors",
        {{"x.a", DType::F32, {4, 3}, t1.a.data()}, {"x.b", DType::BF16, {5}, t1.b.data()}},
        {{"format", "pt"}});
    write_safetensors(
        dir / "model-00002-of-00002.safetensors",
        {{"y.a", DType::F32, {4, 3}, t2.a.data()}, {"y.c", DType::F16, {2, 2}, t2.c.data()}},
        {{"format", "pt"}});
    const Json index = {{"metadata", {{"total_size", 48 + 10 + 48 + 8}}},
                        {"weight_map",
                         {{"x.a", "model-00001-of-00002.safetensors"},
                          {"x.b", "model-00001-of-00002.safetensors"},
                          {"y.a", "model-00002-of-00002.safetensors"},
                          {"y.c", "model-00002-of-00002.safetensors"}}}};
    testing::write_text_file(dir / "model.safetensors.index.json", index.dump());
}

std::vector<std::byte> bytes_of(const SafetensorsModel& m, const std::string& name) {
    const auto b = m.bytes(name);
    return {b.begin(), b.end()};
}

TEST(SafetensorsModel, ReadsShardedFolder) {
    TempDir tmp;
    const Tensors t1(1.0f), t2(-3.0f);
    write_sharded(tmp / "m", t1, t2);
    const auto m = SafetensorsModel::open(tmp / "m");
    EXPECT_TRUE(m.sharded());
    ASSERT_EQ(m.shards().size(), 2u);
    EXPECT_EQ(m.tensor_names(), (std::vector<std::string>{"x.a", "x.b", "y.a", "y.c"}));
    EXPECT_EQ(m.get("y.c").dtype, DType::F16);
    EXPECT_EQ(m.file_of("y.a").path().filename(), "model-00002-of-00002.safetensors");
    EXPECT_EQ(m.read_f32("x.a"), t1.a);
    EXPECT_EQ(m.read_f32("y.a"), t2.a);
    const auto b = m.read_f32("x.b");
    for (int i = 0; i < 5; ++i) EXPECT_EQ(b[i], bf16_to_f32(t1.b[i]));
    const auto c = m.read_f32("y.c");
    for (int i = 0; i < 4; ++i) EXPECT_EQ(c[i], f16_to_f32(t2.c[i]));
    ASSERT_EQ(m.bytes("x.b").size(), 10u);
    EXPECT_EQ(std::memcmp(m.bytes("x.b").data(), t1.b.data(), 10), 0);
    EXPECT_EQ(m.find("nope"), nullptr);
    EXPECT_NE(error_message([&] { m.get("nope"); }).find("nope"), std::string::npos);
    EXPECT_EQ(m.total_parameters(), 12 + 5 + 12 + 4);
    EXPECT_EQ(m.index_metadata().at("total_size"), 114);
    m.release("x.a");  // advice only: the data stays readable
    EXPECT_EQ(m.read_f32("x.a"), t1.a);
}

TEST(SafetensorsModel, ReadsSingleFileAndFolder) {
    TempDir tmp;
    const Tensors t(2.0f);
    fs::create_directories(tmp / "m");
    write_safetensors(tmp / "m" / "model.safetensors", {{"w", DType::F32, {4, 3}, t.a.data()}});
    for (const fs::path& p : {tmp / "m", tmp / "m" / "model.safetensors"}) {
        const auto m = SafetensorsModel::open(p);
        EXPECT_FALSE(m.sharded());
        EXPECT_EQ(m.dir(), tmp / "m");
        EXPECT_EQ(m.read_f32("w"), t.a);
    }
    const auto msg = error_message([&] { SafetensorsModel::open(tmp.path()); });
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(SafetensorsModel, RefusesMalformedIndex) {
    const Tensors t1(1.0f), t2(2.0f);
    const auto broken = [&](const std::function<void(const fs::path&)>& edit) {
        TempDir tmp;
        write_sharded(tmp / "m", t1, t2);
        edit(tmp / "m");
        return error_message([&] { SafetensorsModel::open(tmp / "m"); });
    };
    const auto edit_index = [](const fs::path& dir, const std::function<void(Json&)>& f) {
        Json j = Json::parse(testing::read_text_file(dir / "model.safetensors.index.json"));
        f(j);
        testing::write_text_file(dir / "model.safetensors.index.json", j.dump());
    };

    auto msg =
        broken([](const fs::path& d) { fs::remove(d / "model-00002-of-00002.safetensors"); });
    EXPECT_NE(msg.find("model-00002-of-00002.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;

    msg = broken([&](const fs::path& d) {
        edit_index(
            d, [](Json& j) { j["weight_map"]["z.missing"] = "model-00001-of-00002.safetensors"; });
    });
    EXPECT_NE(msg.find("z.missing"), std::string::npos) << msg;
    EXPECT_NE(msg.find("has no such tensor"), std::string::npos) << msg;

    // The same tensor in both shards.
    msg = broken([&](const fs::path& d) {
        write_safetensors(d / "model-00002-of-00002.safetensors",
                          {{"y.a", DType::F32, {4, 3}, t2.a.data()},
                           {"y.c", DType::F16, {2, 2}, t2.c.data()},
                           {"x.b", DType::BF16, {5}, t2.b.data()}});
    });
    EXPECT_NE(msg.find("x.b"), std::string::npos) << msg;
    EXPECT_NE(msg.find("two shards"), std::string::npos) << msg;

    // A shard tensor the index does not list.
    msg = broken(
        [&](const fs::path& d) { edit_index(d, [](Json& j) { j["weight_map"].erase("y.c"); }); });
    EXPECT_NE(msg.find("y.c"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not listed"), std::string::npos) << msg;

    msg = broken([&](const fs::path& d) {
        edit_index(d, [](Json& j) { j["weight_map"]["x.a"] = "../elsewhere.safetensors"; });
    });
    EXPECT_NE(msg.find("../elsewhere.safetensors"), std::string::npos) << msg;

    msg = broken([](const fs::path& d) {
        testing::write_text_file(d / "model.safetensors.index.json", "{\"weight_map\": [1, 2]}");
    });
    EXPECT_NE(msg.find("weight_map"), std::string::npos) << msg;

    msg = broken([](const fs::path& d) {
        testing::write_text_file(d / "model.safetensors.index.json", "{not json");
    });
    EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
}

// Output tensors that copy every input tensor; y.a is rows 1 and 3 of x.a.
std::vector<OutputTensor> copies(const SafetensorsModel& m) {
    std::vector<OutputTensor> out;
    for (const auto& name : m.tensor_names()) {
        const auto& t = m.get(name);
        out.push_back({name, t.dtype, t.shape, {m.bytes(name)}});
    }
    const auto xa = m.bytes("x.a");
    out.push_back({"rows", DType::F32, {2, 3}, {xa.subspan(12, 12), xa.subspan(36, 12)}});
    return out;
}

TEST(SafetensorsModel, WritesShardedRoundTrip) {
    TempDir tmp;
    const Tensors t1(1.0f), t2(-3.0f);
    write_sharded(tmp / "in", t1, t2);
    const auto in = SafetensorsModel::open(tmp / "in");
    ModelFolderWriteOptions o;
    o.max_shard_bytes = 50;  // x.a (48) | x.b (10) + y.a (48) would pass 50 | ...
    o.input = tmp / "in";
    o.shard_metadata = {{"format", "pt"}};
    o.index_metadata = {{"note", "kept"}};
    o.config = Json{{"model_type", "test"}};
    o.add_files = [](const fs::path& staging) {
        testing::write_text_file(staging / "extra.txt", "hello");
    };
    const auto written = write_model_folder(tmp / "out", copies(in), o);
    ASSERT_EQ(written.files.size(), 4u);  // [x.a] [x.b] [y.a] [y.c rows]
    EXPECT_EQ(written.files[0], "model-00001-of-00004.safetensors");
    EXPECT_EQ(written.tensor_bytes, 48u + 10 + 48 + 8 + 24);

    const auto out = SafetensorsModel::open(tmp / "out");
    EXPECT_TRUE(out.sharded());
    EXPECT_EQ(out.shards().size(), 4u);
    for (const auto& name : in.tensor_names()) {
        EXPECT_EQ(bytes_of(out, name), bytes_of(in, name)) << name;
        EXPECT_EQ(out.get(name).dtype, in.get(name).dtype) << name;
        EXPECT_EQ(out.get(name).shape, in.get(name).shape) << name;
    }
    const auto rows = out.read_f32("rows");
    EXPECT_EQ(rows, (std::vector<float>{t1.a[3], t1.a[4], t1.a[5], t1.a[9], t1.a[10], t1.a[11]}));
    EXPECT_EQ(out.metadata().at("format"), "pt");
    EXPECT_EQ(out.index_metadata().at("total_size"), written.tensor_bytes);
    EXPECT_EQ(out.index_metadata().at("note"), "kept");
    EXPECT_EQ(Json::parse(testing::read_text_file(tmp / "out" / "config.json")).at("model_type"),
              "test");
    EXPECT_EQ(testing::read_text_file(tmp / "out" / "extra.txt"), "hello");
    // No staging folder is left beside the output.
    for (const auto& e : fs::directory_iterator(tmp.path())) {
        EXPECT_EQ(e.path().filename().string().find(".out."), std::string::npos) << e.path();
    }

    // Big enough for everything: one model.safetensors and no index.
    o.max_shard_bytes = kDefaultMaxShardBytes;
    o.overwrite = true;
    const auto one = write_model_folder(tmp / "out", copies(in), o);
    EXPECT_EQ(one.files, std::vector<std::string>{"model.safetensors"});
    EXPECT_FALSE(fs::exists(tmp / "out" / "model.safetensors.index.json"));
    EXPECT_FALSE(fs::exists(tmp / "out" / "model-00001-of-00004.safetensors"));
    const auto single = SafetensorsModel::open(tmp / "out");
    EXPECT_FALSE(single.sharded());
    EXPECT_EQ(single.read_f32("rows"), rows);
}

TEST(SafetensorsModel, WriteRefusesInputAndNonEmptyOutput) {
    TempDir tmp;
    const Tensors t1(1.0f), t2(2.0f);
    write_sharded(tmp / "in", t1, t2);
    const auto in = SafetensorsModel::open(tmp / "in");
    ModelFolderWriteOptions o;
    o.input = tmp / "in";
    o.overwrite = true;
    auto msg = error_message([&] { write_model_folder(tmp / "in", copies(in), o); });
    EXPECT_NE(msg.find("input"), std::string::npos) << msg;
    // Nor a folder containing the input.
    msg = error_message([&] { write_model_folder(tmp.path(), copies(in), o); });
    EXPECT_NE(msg.find("input"), std::string::npos) << msg;
    EXPECT_TRUE(fs::exists(tmp / "in" / "model-00001-of-00002.safetensors"));

    o.overwrite = false;
    fs::create_directories(tmp / "out");
    testing::write_text_file(tmp / "out" / "keep.txt", "mine");
    msg = error_message([&] { write_model_folder(tmp / "out", copies(in), o); });
    EXPECT_NE(msg.find("--overwrite"), std::string::npos) << msg;
    EXPECT_EQ(testing::read_text_file(tmp / "out" / "keep.txt"), "mine");
    // A replaceable entry alone does not block.
    o.replaceable_entries = {"keep.txt"};
    write_model_folder(tmp / "out", copies(in), o);
    EXPECT_FALSE(fs::exists(tmp / "out" / "keep.txt"));
    EXPECT_TRUE(fs::exists(tmp / "out" / "model.safetensors"));
}

TEST(SafetensorsModel, ParsesByteSizes) {
    EXPECT_EQ(parse_byte_size("5GB", "--x"), 5'000'000'000ULL);
    EXPECT_EQ(parse_byte_size("500MB", "--x"), 500'000'000ULL);
    EXPECT_EQ(parse_byte_size("2GiB", "--x"), 2ULL << 30);
    EXPECT_EQ(parse_byte_size("1.5kb", "--x"), 1500ULL);
    EXPECT_EQ(parse_byte_size("123", "--x"), 123ULL);
    for (const char* bad : {"", "GB", "5XB", "-1GB", "1.2.3MB", "0"}) {
        const auto msg = error_message([&] { parse_byte_size(bad, "--max-shard-size"); });
        EXPECT_NE(msg.find("--max-shard-size"), std::string::npos) << bad << ": " << msg;
    }
}

}  // namespace
}  // namespace greenmoe

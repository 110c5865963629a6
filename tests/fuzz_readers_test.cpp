// Fuzz tests of every reader of user files: each is fed truncations, byte flips and inserted
// bytes of a valid input, and must either read it or throw greenmoe::Error; never crash, hang,
// read out of bounds or throw anything else (std::bad_alloc from a size field included).
// Built twice: in greenmoe_tests, and under AddressSanitizer + UBSan in greenmoe_fuzz_asan.
#include <bzlib.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/core/rng.h"
#include "greenmoe/eval/hellaswag_data.h"
#include "greenmoe/hf/hf_config.h"
#include "greenmoe/hf/lora_adapter.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/json_lines.h"
#include "greenmoe/io/npy.h"
#include "greenmoe/io/parquet/parquet_reader.h"
#include "greenmoe/io/safetensors.h"
#include "greenmoe/io/safetensors_model.h"
#include "greenmoe/io/token_shard.h"
#include "greenmoe/lora/instruction_data.h"
#include "greenmoe/report/run_data.h"
#include "greenmoe/text/hf_tokenizer.h"
#include "greenmoe/train/run_log.h"
#include "greenmoe/train/train_config.h"
#include "test_support.h"

namespace greenmoe {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_text_file;

// How many mutants of one valid input a reader gets, and where the changes go.
struct FuzzPlan {
    uint64_t seed = 1;
    size_t truncations = 1200;  // every length when the input is no longer, else a spread
    size_t flips = 1500;        // one byte changed: a bit flipped, or set to a chosen value
    size_t inserts = 400;       // a byte or a short token inserted
    size_t deletions = 100;     // a short span removed
    // Most changes go into the first `hot` bytes (a binary header), the rest anywhere;
    // 0 spreads them all over the input.
    size_t hot = 0;
};

// Bytes that move parsers off their happy path: NUL, sign bits, JSON and .npy punctuation,
// digits, newlines.
constexpr std::array<unsigned char, 20> kBytes = {0x00, 0xff, 0x7f, 0x80, 0x01, '0', '9',
                                                  '-',  '"',  '[',  ']',  '{',  '}', ',',
                                                  ':',  '\n', '\\', ' ',  'e',  '('};
// Tokens inserted whole: numbers at and past every limit, structure openers, bad UTF-8.
constexpr std::array<std::string_view, 14> kTokens = {"9999999999999999999",
                                                      "18446744073709551616",
                                                      "4294967296",
                                                      "2147483648",
                                                      "-1",
                                                      "1e999",
                                                      "-0.5",
                                                      "[",
                                                      "{\"\":",
                                                      "\"",
                                                      "\n",
                                                      "\xff\xfe",
                                                      "0,",
                                                      "null"};

size_t pick(Rng& rng, size_t n) {
    return n == 0 ? 0 : static_cast<size_t>(rng.next_u64() % n);
}

size_t pick_position(Rng& rng, size_t size, size_t hot) {
    if (hot > 0 && hot < size && pick(rng, 8) != 0) return pick(rng, hot);
    return pick(rng, size);
}

// Calls visit(bytes, description) for each deterministic mutant of `valid`.
template <typename Visit>
void for_each_mutant(const std::string& valid, const FuzzPlan& plan, Visit&& visit) {
    const size_t n = valid.size();
    // Truncations: every length up to the plan's count, then evenly spread, plus the last few.
    const size_t step = n <= plan.truncations ? 1 : (n + plan.truncations - 1) / plan.truncations;
    for (size_t len = 0; len < n; ++len) {
        if (len % step != 0 && len + 8 < n) continue;
        std::string what = "truncated to ";
        what += std::to_string(len);
        what += " bytes";
        visit(valid.substr(0, len), what);
    }
    Rng rng{rng_key(plan.seed, 0x7a11), 0};
    for (size_t i = 0; i < plan.flips && n > 0; ++i) {
        std::string bytes = valid;
        const size_t at = pick_position(rng, n, plan.hot);
        const unsigned char before = static_cast<unsigned char>(bytes[at]);
        unsigned char after;
        switch (pick(rng, 3)) {
            case 0:
                after = static_cast<unsigned char>(before ^ (1u << pick(rng, 8)));
                break;
            case 1:
                after = kBytes[pick(rng, kBytes.size())];
                break;
            default:
                after = static_cast<unsigned char>(rng.next_u64());
        }
        bytes[at] = static_cast<char>(after);
        visit(bytes, fmt::format("byte {} changed from 0x{:02x} to 0x{:02x}", at, before, after));
    }
    for (size_t i = 0; i < plan.inserts; ++i) {
        std::string bytes = valid;
        const size_t at = pick_position(rng, n + 1, plan.hot);
        std::string token;
        if (pick(rng, 2) == 0) {
            token = std::string(kTokens[pick(rng, kTokens.size())]);
        } else {
            token = std::string(1, static_cast<char>(rng.next_u64()));
        }
        bytes.insert(at, token);
        visit(bytes, fmt::format("{:?} inserted at byte {}", token, at));
    }
    for (size_t i = 0; i < plan.deletions && n > 0; ++i) {
        std::string bytes = valid;
        const size_t at = pick_position(rng, n, plan.hot);
        const size_t count = 1 + pick(rng, 16);
        bytes.erase(at, count);
        visit(bytes, fmt::format("{} bytes removed at byte {}", count, at));
    }
}

// Feeds every mutant to read(bytes): it must return or throw greenmoe::Error. The valid input
// itself must read, or the mutants would test nothing.
template <typename Read>
void fuzz_reader(const std::string& name, const std::string& valid, const FuzzPlan& plan,
                 Read&& read) {
    ASSERT_NO_THROW(read(valid)) << name << ": the valid input does not read";
    size_t accepted = 0, rejected = 0, failures = 0;
    for_each_mutant(valid, plan, [&](const std::string& bytes, const std::string& what) {
        std::string problem;
        try {
            read(bytes);
            ++accepted;
            return;
        } catch (const Error&) {
            ++rejected;
            return;
        } catch (const std::bad_alloc&) {
            problem = "std::bad_alloc (an allocation sized by the file?)";
        } catch (const std::exception& e) {
            problem = fmt::format("{}: {}", typeid(e).name(), e.what());
        } catch (...) {
            problem = "an exception of unknown type";
        }
        if (++failures <= 5) {
            ADD_FAILURE() << name << ", " << what << ": threw " << problem
                          << " instead of greenmoe::Error";
        }
    });
    EXPECT_EQ(failures, 0u) << name;
    EXPECT_GT(rejected, 0u) << name << ": no mutant was rejected";
    std::printf("[ fuzz     ] %s: %zu mutants, %zu read, %zu rejected with an Error\n",
                name.c_str(), accepted + rejected + failures, accepted, rejected);
}

// A copy of `bytes` in a heap block of exactly its size, so that AddressSanitizer sees a read
// one past the end (std::string keeps a NUL and spare capacity there).
class ExactBuffer {
  public:
    explicit ExactBuffer(const std::string& bytes)
        : size_(bytes.size()), data_(new char[std::max<size_t>(bytes.size(), 1)]) {
        if (size_ > 0) std::memcpy(data_.get(), bytes.data(), size_);
    }
    std::string_view view() const { return {data_.get(), size_}; }
    const std::byte* bytes() const { return reinterpret_cast<const std::byte*>(data_.get()); }
    size_t size() const { return size_; }

  private:
    size_t size_;
    std::unique_ptr<char[]> data_;
};

std::string read_fixture(const fs::path& path) {
    return read_file(path);
}

// Touches every byte of a span, so that a range past the mapped file faults here.
uint64_t checksum(const std::byte* data, size_t size) {
    uint64_t sum = 0;
    for (size_t i = 0; i < size; ++i) sum = sum * 31 + static_cast<uint64_t>(data[i]);
    return sum;
}

// ---- safetensors ----

std::string small_safetensors(const TempDir& dir) {
    const std::vector<float> w = {1, 2, 3, 4, 5, 6};
    const std::vector<uint16_t> h = {0x3c00, 0xc000, 0x7bff, 0x0001};
    const std::vector<int32_t> ids = {7, -8, 9, 10};
    write_safetensors(dir / "small.safetensors",
                      {{"w", DType::F32, {2, 3}, w.data()},
                       {"b", DType::BF16, {4}, h.data()},
                       {"h", DType::F16, {2, 2}, h.data()},
                       {"empty", DType::F32, {0, 5}, nullptr},
                       {"ids", DType::I32, {4}, ids.data()}},
                      {{"format", "pt"}, {"greenmoe", "{\"n_layer\": 2}"}});
    return read_file(dir / "small.safetensors");
}

// Checks what open() promises: every tensor lies inside the data section and is as long as
// its shape says; then reads each one.
void use_safetensors(const SafetensorsFile& st, size_t file_size) {
    uint64_t header_len = 0;
    std::memcpy(&header_len, read_file(st.path()).data(), 8);
    const uint64_t data_size = file_size - 8 - header_len;
    for (const TensorInfo& t : st.tensors()) {
        if (t.offset > data_size || t.nbytes > data_size - t.offset) {
            ADD_FAILURE() << st.path() << ": tensor '" << t.name << "' at [" << t.offset << ", +"
                          << t.nbytes << ") outside the " << data_size << "-byte data section";
            continue;
        }
        uint64_t numel = 1;
        for (const int64_t d : t.shape) numel *= static_cast<uint64_t>(d);
        EXPECT_EQ(numel * dtype_size(t.dtype), t.nbytes) << t.name;
        checksum(st.data(t), t.nbytes);
        if (t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16 ||
            t.dtype == DType::F64) {
            st.read_f32(t.name);
        }
    }
}

TEST(FuzzReaders, Safetensors) {
    TempDir dir;
    const fs::path path = dir / "mutant.safetensors";
    const auto read = [&](const std::string& bytes) {
        write_text_file(path, bytes);
        const SafetensorsFile st = SafetensorsFile::open(path);
        use_safetensors(st, bytes.size());
    };
    const std::string small = small_safetensors(dir);
    uint64_t header_len = 0;
    std::memcpy(&header_len, small.data(), 8);
    FuzzPlan plan;
    plan.seed = 1;
    plan.hot = 8 + header_len;
    fuzz_reader("safetensors (written here)", small, plan, read);

    // A real model's file, as transformers writes it.
    const std::string llama =
        read_fixture(testing::shared_data() / "hf-fixtures/tiny_llama.safetensors");
    std::memcpy(&header_len, llama.data(), 8);
    plan = {};
    plan.seed = 2;
    plan.truncations = 400;
    plan.flips = 600;
    plan.inserts = 200;
    plan.hot = 8 + header_len;
    fuzz_reader("safetensors (tiny_llama)", llama, plan, read);
}

TEST(FuzzReaders, SafetensorsShardIndex) {
    TempDir dir;
    const fs::path fixtures = testing::shared_data() / "hf-fixtures";
    for (const char* shard :
         {"tiny_llama-00001-of-00002.safetensors", "tiny_llama-00002-of-00002.safetensors"}) {
        fs::copy_file(fixtures / shard, dir / shard);
    }
    const std::string index = read_fixture(fixtures / "tiny_llama.safetensors.index.json");
    const auto read = [&](const std::string& bytes) {
        write_text_file(dir / "model.safetensors.index.json", bytes);
        const SafetensorsModel model = SafetensorsModel::open(dir.path());
        for (const std::string& name : model.tensor_names()) {
            const auto b = model.bytes(name);
            checksum(b.data(), b.size());
        }
    };
    FuzzPlan plan;
    plan.seed = 3;
    plan.truncations = 300;
    plan.flips = 500;
    plan.inserts = 200;
    fuzz_reader("model.safetensors.index.json", index, plan, read);
}

// ---- token shards ----

// Checks what open() promises: the tokens fill the file exactly; then reads every one.
void use_token_shard(const TokenShard& shard, size_t file_size) {
    const size_t width = shard.wide() ? 4 : 2;
    ASSERT_LE(shard.size(), file_size / width) << shard.path();
    uint64_t sum = 0;
    for (size_t i = 0; i < shard.size(); ++i) sum += shard.token(i);
    EXPECT_GE(sum, 0u);
}

TEST(FuzzReaders, TokenShards) {
    TempDir dir;
    std::vector<uint16_t> tokens16(40);
    std::vector<uint32_t> tokens32(40);
    for (size_t i = 0; i < tokens16.size(); ++i) {
        tokens16[i] = static_cast<uint16_t>(i * 977 + 50256);
        tokens32[i] = static_cast<uint32_t>(i * 100003 + 151643);
    }
    write_token_shard(dir / "u16.bin", tokens16.data(), tokens16.size());
    write_token_shard(dir / "u32.bin", tokens32.data(), tokens32.size());
    write_npy(dir / "u16.npy", tokens16.data(), {static_cast<int64_t>(tokens16.size())});
    write_npy_raw(dir / "u32.npy", "<u4", tokens32.data(), {static_cast<int64_t>(tokens32.size())});

    const fs::path path = dir / "mutant.bin";
    const auto read = [&](const std::string& bytes) {
        write_text_file(path, bytes);
        use_token_shard(TokenShard::open(path), bytes.size());
    };
    uint64_t seed = 10;
    for (const char* name : {"u16.bin", "u32.bin", "u16.npy", "u32.npy"}) {
        const std::string valid = read_file(dir / name);
        const bool npy = std::string_view(name).ends_with(".npy");
        FuzzPlan plan;
        plan.seed = seed++;
        // The llm.c header's magic, version and count; the .npy prefix and dict.
        plan.hot = npy ? 128 : 12;
        plan.truncations = npy ? 400 : 300;
        plan.flips = 600;
        plan.inserts = 150;
        fuzz_reader(std::string("token shard ") + name, valid, plan, read);
    }
}

// ---- .npy ----

TEST(FuzzReaders, Npy) {
    TempDir dir;
    const std::vector<float> f32 = {1.5f, -2, 3, 4, 5, 6};
    const std::vector<double> f64 = {1.5, -2, 3};
    const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x7bff, 0x0001};
    const std::vector<uint8_t> u8 = {1, 2, 3, 4, 5, 6, 7, 8};
    write_npy(dir / "f32.npy", f32.data(), {2, 3});
    write_npy(dir / "f64.npy", f64.data(), {3});
    write_npy_raw(dir / "f16.npy", "<f2", f16.data(), {4, 1});
    write_npy_raw(dir / "u8.npy", "|u1", u8.data(), {2, 2, 2});
    write_npy_raw(dir / "fortran.npy", "<f4", f32.data(), {6}, true);

    const fs::path path = dir / "mutant.npy";
    const auto read = [&](const std::string& bytes) {
        // The header parser on an exact-size buffer, where a read past the end is caught ...
        const ExactBuffer buffer(bytes);
        const NpyHeader header = parse_npy_header(buffer.bytes(), buffer.size(), path);
        EXPECT_LE(header.data_offset, bytes.size());
        // ... and the whole reader on a file.
        write_text_file(path, bytes);
        const NpyArray array = read_npy(path);
        EXPECT_EQ(array.data.size(),
                  static_cast<size_t>(array.numel()) * npy_item_size(array.descr, path));
        if (array.descr == "<f4" || array.descr == "<f8" || array.descr == "<f2") array.to_f32();
    };
    uint64_t seed = 20;
    for (const char* name : {"f32.npy", "f64.npy", "f16.npy", "u8.npy", "fortran.npy"}) {
        FuzzPlan plan;
        plan.seed = seed++;
        plan.hot = 128;
        plan.flips = 800;
        plan.inserts = 300;
        fuzz_reader(std::string(".npy ") + name, read_file(dir / name), plan, read);
    }
    // A committed fixture, as NumPy itself wrote it.
    FuzzPlan plan;
    plan.seed = seed;
    plan.hot = 128;
    plan.truncations = 300;
    plan.flips = 600;
    plan.inserts = 200;
    fuzz_reader(".npy fixtures/npy/tokens_u16.npy",
                read_file(fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/npy/tokens_u16.npy"),
                plan, read);
}

// ---- HellaSwag ----

std::string bzip2(const std::string& text) {
    auto size = static_cast<unsigned>(text.size() + text.size() / 100 + 600);
    std::string out(size, '\0');
    std::string in = text;  // libbz2 takes a non-const source
    const int rc = BZ2_bzBuffToBuffCompress(out.data(), &size, in.data(),
                                            static_cast<unsigned>(in.size()), 9, 0, 0);
    EXPECT_EQ(rc, BZ_OK);
    out.resize(size);
    return out;
}

TEST(FuzzReaders, HellaSwag) {
    TempDir dir;
    const auto reader = [&](const char* name) {
        const fs::path path = dir / name;
        return [path](const std::string& bytes) {
            write_text_file(path, bytes);
            for (const HellaSwagItem& item : read_hellaswag(path)) {
                EXPECT_TRUE(item.label >= 0 && item.label <= 3) << item.source;
            }
        };
    };
    FuzzPlan plan;
    plan.seed = 30;
    plan.truncations = 2000;
    plan.flips = 1500;
    plan.inserts = 500;
    fuzz_reader("hellaswag .jsonl (fixtures/hellaswag/sample.jsonl)",
                read_file(fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/hellaswag/sample.jsonl"),
                plan, reader("mutant.jsonl"));

    const std::string text =
        "Roof shingle removal: A man is sitting on a roof. he\n3\nis using wrap to wrap a pair "
        "of skis.\nis ripping level tiles off.\nis holding a rubik's cube.\nstarts pulling up "
        "roofing on a roof.\nClean and jerk: A lady walks to a barbell. She\n1\nswings and "
        "lands in her arms.\npulls the barbell forward.\npulls a rope attached to the "
        "barbell.\nstands and lifts the weight over her head.\n";
    plan = {};
    plan.seed = 31;
    fuzz_reader("hellaswag .txt", text, plan, reader("mutant.txt"));
    plan = {};
    plan.seed = 32;
    plan.flips = 1000;
    plan.inserts = 300;
    fuzz_reader("hellaswag .txt.bz2", bzip2(text + text), plan, reader("mutant.txt.bz2"));
}

// ---- configuration JSON: training presets and Hugging Face config.json ----

TEST(FuzzReaders, TrainConfigJson) {
    TempDir dir;
    const fs::path configs = fs::path(GREENMOE_SOURCE_DIR) / "configs";
    fs::copy_file(configs / "nano.json", dir / "nano.json");
    const auto reader = [&](const char* name) {
        const fs::path path = dir / name;
        return [path](const std::string& bytes) {
            write_text_file(path, bytes);
            const TrainConfig config = train_config_from_json(load_config_json(path.string(), {}));
            EXPECT_GE(config.model.n_layer, 1);
        };
    };
    FuzzPlan plan;
    plan.seed = 40;
    fuzz_reader("config preset nano.json", read_file(configs / "nano.json"), plan,
                reader("mutant.json"));
    // A preset that extends another, as configs/nano-switch.json does.
    plan.seed = 41;
    fuzz_reader("config preset nano-switch.json", read_file(configs / "nano-switch.json"), plan,
                reader("mutant-switch.json"));
}

TEST(FuzzReaders, HfConfigJson) {
    TempDir dir;
    const fs::path path = dir / "config.json";
    const auto read = [&](const std::string& bytes) {
        write_text_file(path, bytes);
        const hf::ModelConfig config = hf::read_model_config(path);
        EXPECT_EQ(config.layers.size(), static_cast<size_t>(config.num_layers));
    };
    uint64_t seed = 50;
    for (const char* name : {"tiny_qwen3_moe_config.json", "tiny_deepseek_v2_config.json",
                             "tiny_granitemoeshared_config.json", "tiny_mixtral_config.json"}) {
        FuzzPlan plan;
        plan.seed = seed++;
        plan.flips = 1000;
        plan.inserts = 400;
        fuzz_reader(std::string("hf ") + name,
                    read_fixture(testing::shared_data() / "hf-fixtures" / name), plan, read);
    }
}

// ---- PEFT LoRA adapters: adapter_config.json and adapter_model.safetensors ----

TEST(FuzzReaders, LoraAdapter) {
    TempDir dir;
    const fs::path fixture = fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/peft/olmoe_attention";
    const std::string config = read_fixture(fixture / "adapter_config.json");
    const std::string weights = read_fixture(fixture / "adapter_model.safetensors");
    const auto read = [&](const std::string& config_bytes, const std::string& weight_bytes) {
        write_text_file(dir / "adapter_config.json", config_bytes);
        write_text_file(dir / "adapter_model.safetensors", weight_bytes);
        const hf::LoraAdapter adapter = hf::read_lora_adapter(dir.path());
        for (const hf::LoraModule& m : adapter.modules) {
            EXPECT_EQ(m.a.size(), static_cast<size_t>(m.rank * m.in));
            EXPECT_EQ(m.b.size(), static_cast<size_t>(m.out * m.rank));
        }
    };
    FuzzPlan plan;
    plan.seed = 70;
    fuzz_reader("adapter_config.json", config, plan,
                [&](const std::string& bytes) { read(bytes, weights); });
    FuzzPlan header;
    header.seed = 71;
    header.hot = 1200;  // the JSON header and the first tensors
    header.truncations = 600;
    fuzz_reader("adapter_model.safetensors", weights, header,
                [&](const std::string& bytes) { read(config, bytes); });
}

// ---- log.jsonl ----

TEST(FuzzReaders, LogJsonl) {
    const std::string log =
        R"({"type":"start","resumed_from_step":0,"parameters":1234567,"tokens_per_step":2048,)"
        R"("grad_accum_steps":1,"config":{"model":{"n_layer":2,"mlp":"switch","n_experts":4}}})"
        "\n"
        R"({"type":"val","step":0,"val_loss":10.9,"val_tokens":4096,"seconds":0.5})"
        "\n"
        R"({"type":"train","step":0,"loss":10.8,"lr":0.001,"grad_norm":1.5,"tokens":2048,)"
        R"("tokens_per_s":900.5,"step_ms":2270,"train_seconds":2.27,"aux_loss":0.01,)"
        R"("moe":[{"layer":0,"kind":"mlp","load":[0.1,0.2,0.3,0.4],"dropped":0.05,)"
        R"("load_cv":0.4,"entropy":1.2,"bias":[0,0,0,0]}],"energy_j":12.5,"co2e_g":0.002,)"
        R"("j_per_token":0.006,"energy_source":"rapl"})"
        "\n"
        R"({"type":"train","step":1,"loss":10.1,"tokens":4096})"
        "\n"
        R"({"type":"eval","step":1,"task":"hellaswag","items":100,"acc":0.25,"acc_norm":0.27})"
        "\n"
        R"({"type":"sample","step":1,"text":"Hello <world>"})"
        "\n"
        R"({"type":"start","resumed_from_step":1,"parameters":1234567})"
        "\n"
        R"({"type":"train","step":1,"loss":10.0,"tokens":4096})"
        "\n"
        R"({"type":"done","step":2,"train_loss":9.5,"tokens":4096,"train_seconds":4.5,)"
        R"("val_loss":9.9,"energy_j":30,"co2e_g":0.005,"energy_source":"rapl"})"
        "\n";
    TempDir dir;
    const fs::path path = dir / "log.jsonl";
    const auto read = [&](const std::string& bytes) {
        // The torn-line check on an exact-size buffer; the report's reader; the trainer's
        // reader on resume (which rewrites the file, so it goes last).
        const ExactBuffer buffer(bytes);
        const JsonLinesText lines = without_torn_last_line(buffer.view(), path.string());
        EXPECT_LE(lines.complete.size(), bytes.size());
        report::RunData run;
        report::parse_run_log(bytes, path.string(), run);
        write_text_file(path, bytes);
        const RunLog resumed(path, 1);
    };
    FuzzPlan plan;
    plan.seed = 60;
    plan.truncations = 1500;
    fuzz_reader("log.jsonl", log, plan, read);
}

// ---- instruction data (LoRA healing) ----

TEST(FuzzReaders, InstructionData) {
    const std::string jsonl =
        R"({"conversations": [{"from": "system", "value": "You are terse."},)"
        R"( {"from": "human", "value": "Name a colour \u00e9\n\"quoted\""},)"
        R"( {"from": "gpt", "value": "Blue."}, {"from": "human", "value": "Another?"},)"
        R"( {"from": "gpt", "value": "Red, then. \u2581 caf\u00e9"}]})"
        "\n\n"
        R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})"
        "\r\n"
        R"({"instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "id": 12})"
        "\n"
        R"({"instruction": "Say hi.", "input": null, "output": "Hi <|im_end|>"})"
        "\n"
        R"({"text": "Plain text, all of it trained on: 1234567890."})"
        "\n";
    TempDir dir;
    const fs::path path = dir / "mutant.jsonl";
    const hf::Tokenizer tokenizer = hf::Tokenizer::load(
        fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/hf-tokenizers/qwen2_tokenizer.json");
    const auto reader = [&](lora::InstructionDataOptions options) {
        return [&, options](const std::string& bytes) {
            write_text_file(path, bytes);
            const auto examples = lora::read_instruction_file(path, options);
            const lora::TrainingSequences s =
                lora::build_training_sequences(examples, tokenizer, options, 0, 1);
            EXPECT_EQ(s.ids.size(), static_cast<size_t>(s.rows * s.seq_len));
            EXPECT_EQ(s.labels.size(), s.ids.size());
            for (size_t i = 0; i < s.ids.size(); ++i) {
                EXPECT_TRUE(s.labels[i] == lora::kIgnoreLabel || s.labels[i] == s.ids[i]) << i;
            }
        };
    };
    lora::InstructionDataOptions packed;
    packed.seq_len = 16;
    FuzzPlan plan;
    plan.seed = 80;
    fuzz_reader("instruction .jsonl (instruction-response, packed)", jsonl, plan, reader(packed));
    lora::InstructionDataOptions padded;
    padded.template_name = "chatml";
    padded.loss_on = lora::LossOn::Responses;
    padded.pack = false;
    padded.seq_len = 24;
    plan = {};
    plan.seed = 81;
    plan.truncations = 400;
    plan.flips = 800;
    plan.inserts = 300;
    fuzz_reader("instruction .jsonl (chatml, padded)", jsonl, plan, reader(padded));
}

// ---- tokenizer.json ----

TEST(FuzzReaders, HfTokenizerJson) {
    TempDir dir;
    const fs::path path = dir / "tokenizer.json";
    const auto read = [&](const std::string& bytes) {
        write_text_file(path, bytes);
        const hf::Tokenizer tokenizer = hf::Tokenizer::load(path);
        const std::vector<int> ids = tokenizer.encode("Hello world, 123 <unk> héllo!");
        for (const int id : ids) {
            EXPECT_TRUE(id >= 0 && id < tokenizer.vocab_size()) << id;
        }
        tokenizer.decode(ids);
    };
    uint64_t seed = 70;
    for (const char* name :
         {"tiny_bpe_bytelevel_tokenizer.json", "tiny_unigram_tokenizer.json",
          "tiny_wordpiece_tokenizer.json", "tiny_bpe_metaspace_tokenizer.json"}) {
        FuzzPlan plan;
        plan.seed = seed++;
        plan.truncations = 200;
        plan.flips = 500;
        plan.inserts = 200;
        plan.deletions = 50;
        fuzz_reader(std::string("tokenizer ") + name,
                    read_fixture(testing::shared_data() / "hf-tokenizers" / name), plan, read);
    }
}

// ---- Parquet ----

// Every fixture of tests/fixtures/parquet (each encoding, codec, page version, nested column):
// all rows as JSON, and every plain column through the flat path prepare uses.
TEST(FuzzReaders, Parquet) {
    TempDir dir;
    const fs::path path = dir / "mutant.parquet";
    const auto read = [&](const std::string& bytes) {
        write_text_file(path, bytes);
        const auto file = parquet::ParquetFile::open(path);
        size_t rows = 0;
        std::vector<nlohmann::json> group_rows;
        parquet::FlatColumn column;
        for (size_t g = 0; g < file.num_row_groups(); ++g) {
            file.read_rows(g, {}, group_rows);
            rows += group_rows.size();
            for (const int n : file.schema().top_level) {
                const auto& node = file.schema().nodes[static_cast<size_t>(n)];
                if (node.leaf < 0 || node.element.repetition == parquet::Repetition::kRepeated) {
                    continue;
                }
                file.read_flat(g, node.element.name, column);
                size_t present = 0;
                for (size_t i = 0; i < column.rows; ++i) present += column.has_value(i);
                EXPECT_EQ(present, column.values.size());
            }
        }
        EXPECT_EQ(rows, static_cast<size_t>(file.num_rows()));
    };
    const fs::path fixtures = fs::path(GREENMOE_SOURCE_DIR) / "tests/fixtures/parquet";
    uint64_t seed = 40;
    for (const char* name : {"plain_v1_uncompressed", "dict_v1_snappy", "dict_v2_gzip",
                             "plain_v2_zstd", "delta_v1_uncompressed", "delta_v2_zstd",
                             "nested_v1_snappy", "nested_v2_uncompressed", "fineweb_edu"}) {
        FuzzPlan plan;
        plan.seed = ++seed;
        plan.truncations = 120;
        plan.flips = 300;
        plan.inserts = 40;
        plan.deletions = 40;
        std::string label = "parquet ";
        label += name;
        fuzz_reader(label, read_fixture(fixtures / (std::string(name) + ".parquet")), plan, read);
    }
}

// ---- size fields: a file that claims more than it holds must not be allocated for ----

TEST(FuzzReaders, SizeFieldsFromTheFileAreBounded) {
    TempDir dir;
    const auto rejects = [&](const char* name, const std::string& bytes, const auto& read) {
        const fs::path path = dir / name;
        write_text_file(path, bytes);
        EXPECT_FALSE(testing::error_message([&] { read(path); }).empty()) << name;
    };
    const auto safetensors = [](const std::string& header) {
        const uint64_t n = header.size();
        std::string bytes(reinterpret_cast<const char*>(&n), 8);
        return bytes + header;
    };
    const auto open_st = [](const fs::path& p) { SafetensorsFile::open(p); };
    rejects("huge-header.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10),
            open_st);
    rejects("huge-offsets.safetensors",
            safetensors(R"({"w":{"dtype":"F32","shape":[4611686018427387904],)"
                        R"("data_offsets":[0,18446744073709551612]}})"),
            open_st);
    // Dimensions whose product overflows, but with a zero: a valid empty tensor.
    write_text_file(dir / "empty.safetensors",
                    safetensors(R"({"w":{"dtype":"U8","shape":[4294967296,2147483648,0],)"
                                R"("data_offsets":[0,0]}})"));
    EXPECT_EQ(SafetensorsFile::open(dir / "empty.safetensors").get("w").numel(), 0);

    std::array<int32_t, 256> shard{};
    shard[0] = kShardMagic;
    shard[1] = kShardVersion;
    shard[2] = INT32_MAX;
    rejects("huge-count.bin", std::string(reinterpret_cast<const char*>(shard.data()), 1024),
            [](const fs::path& p) { TokenShard::open(p); });
    std::string npy = "\x93NUMPY\x01";
    npy += '\0';
    const std::string dict =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }";
    npy += static_cast<char>(dict.size());
    npy += '\0';
    rejects("huge-shape.npy", npy + dict, [](const fs::path& p) { read_npy(p); });
    rejects("huge-shape-tokens.npy", npy + dict, [](const fs::path& p) { TokenShard::open(p); });

    const auto hf_config = [](const fs::path& p) { hf::read_model_config(p); };
    const std::string llama = R"({"model_type":"llama","vocab_size":13,"hidden_size":8,)"
                              R"("intermediate_size":12,"num_attention_heads":2,)";
    rejects("layers.json", llama + R"("num_hidden_layers":2000000000})", hf_config);
    rejects("wrapped.json", llama + R"("num_hidden_layers":4294967298})", hf_config);
    rejects("rotary.json", llama + R"("num_hidden_layers":2,"partial_rotary_factor":1e300})",
            hf_config);

    rejects("tokenizer.json",
            R"({"model":{"type":"WordPiece","unk_token":"a","vocab":{"a":0,"b":2000000000}}})",
            [](const fs::path& p) { hf::Tokenizer::load(p); });
}

}  // namespace
}  // namespace greenmoe

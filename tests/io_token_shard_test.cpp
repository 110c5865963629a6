// Tests of token shards (io/token_shard.h): llm.c .bin and build-nanogpt .npy, round trips,
// malformed files, and shard pattern expansion.
#include "greenmoe/io/token_shard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "greenmoe/io/npy.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
using testing::TempDir;

std::vector<uint16_t> sample_tokens(size_t n) {
    std::vector<uint16_t> tokens(n);
    for (size_t i = 0; i < n; ++i) tokens[i] = static_cast<uint16_t>((i * 40503u + 7u) & 0xffff);
    if (n > 1) {
        tokens[0] = 50256;  // <|endoftext|>, as llm.c starts every document
        tokens[n - 1] = 65535;
    }
    return tokens;
}

// An llm.c header with the given fields followed by raw token bytes.
std::string bin_bytes(int32_t magic, int32_t version, int32_t count, size_t token_bytes) {
    std::array<int32_t, 256> header{};
    header[0] = magic;
    header[1] = version;
    header[2] = count;
    std::string bytes(reinterpret_cast<const char*>(header.data()), 1024);
    bytes.append(token_bytes, '\x01');
    return bytes;
}

std::string open_error(const std::filesystem::path& path) {
    const std::string message = error_message([&] { TokenShard::open(path); });
    EXPECT_THAT(message, HasSubstr(path.string()));
    return message;
}

TEST(IoTokenShard, BinRoundTrip) {
    TempDir dir;
    const auto tokens = sample_tokens(1000);
    write_token_shard(dir / "train_000000.bin", tokens.data(), tokens.size());
    EXPECT_EQ(std::filesystem::file_size(dir / "train_000000.bin"), 1024u + 2000u);

    const std::string raw = read_file(dir / "train_000000.bin");
    int32_t header[3];
    std::memcpy(header, raw.data(), sizeof header);
    EXPECT_EQ(header[0], 20240520);
    EXPECT_EQ(header[1], 1);
    EXPECT_EQ(header[2], 1000);
    EXPECT_TRUE(std::all_of(raw.begin() + 12, raw.begin() + 1024, [](char c) { return c == 0; }));

    const TokenShard shard = TokenShard::open(dir / "train_000000.bin");
    EXPECT_EQ(shard.path(), dir / "train_000000.bin");
    ASSERT_EQ(shard.size(), tokens.size());
    EXPECT_EQ(std::vector<uint16_t>(shard.tokens(), shard.tokens() + shard.size()), tokens);
}

TEST(IoTokenShard, EmptyBinShard) {
    TempDir dir;
    write_token_shard(dir / "empty.bin", static_cast<const uint16_t*>(nullptr), 0);
    const TokenShard shard = TokenShard::open(dir / "empty.bin");
    EXPECT_EQ(shard.size(), 0u);
}

TEST(IoTokenShard, NpyRoundTrip) {
    TempDir dir;
    const auto tokens = sample_tokens(777);
    write_npy(dir / "shard.npy", tokens.data(), {777});
    const TokenShard shard = TokenShard::open(dir / "shard.npy");
    ASSERT_EQ(shard.size(), tokens.size());
    EXPECT_EQ(std::vector<uint16_t>(shard.tokens(), shard.tokens() + shard.size()), tokens);
}

TEST(IoTokenShard, FormatIsChosenByContentNotExtension) {
    TempDir dir;
    const auto tokens = sample_tokens(10);
    write_npy(dir / "really_npy.bin", tokens.data(), {10});
    write_token_shard(dir / "really_bin.npy", tokens.data(), tokens.size());
    EXPECT_EQ(TokenShard::open(dir / "really_npy.bin").tokens()[9], tokens[9]);
    EXPECT_EQ(TokenShard::open(dir / "really_bin.npy").tokens()[9], tokens[9]);
}

TEST(IoTokenShard, ReadsNumpyWrittenFixture) {
    // tests/fixtures/npy/tokens_u16.npy from tools/fixtures/make_npy_fixtures.py (np.save).
    const TokenShard shard = TokenShard::open(std::filesystem::path(GREENMOE_SOURCE_DIR) /
                                              "tests/fixtures/npy/tokens_u16.npy");
    ASSERT_EQ(shard.size(), 1000u);
    for (size_t i = 0; i < shard.size(); ++i) {
        ASSERT_EQ(shard.tokens()[i], (i * 7919 + 50256) % 50257) << i;
    }
}

TEST(IoTokenShard, MovedShardsKeepTheirTokens) {
    TempDir dir;
    const auto tokens = sample_tokens(100);
    write_token_shard(dir / "a.bin", tokens.data(), tokens.size());
    std::vector<TokenShard> shards;
    for (int i = 0; i < 5; ++i) shards.push_back(TokenShard::open(dir / "a.bin"));
    TokenShard moved = std::move(shards[0]);
    shards.erase(shards.begin());
    EXPECT_EQ(moved.tokens()[99], 65535);
    EXPECT_EQ(shards.back().tokens()[0], 50256);
}

TEST(IoTokenShard, BadMagic) {
    TempDir dir;
    write_file_atomic(dir / "x.bin", bin_bytes(20240521, 1, 4, 8));
    EXPECT_THAT(open_error(dir / "x.bin"),
                HasSubstr("expected the llm.c magic 20240520 (or 20240801) or a .npy file, "
                          "found first int32 20240521"));
    write_file_atomic(dir / "t.bin", "ab");
    EXPECT_THAT(open_error(dir / "t.bin"), HasSubstr("found only 2 bytes"));
}

TEST(IoTokenShard, WrongVersion) {
    TempDir dir;
    write_file_atomic(dir / "x.bin", bin_bytes(kShardMagic, 2, 4, 16));
    EXPECT_THAT(open_error(dir / "x.bin"), HasSubstr("unsupported llm.c shard version 2"));
}

TEST(IoTokenShard, TruncatedBin) {
    TempDir dir;
    const auto tokens = sample_tokens(100);
    write_token_shard(dir / "x.bin", tokens.data(), tokens.size());
    std::filesystem::resize_file(dir / "x.bin", 1024 + 190);
    const std::string message = open_error(dir / "x.bin");
    EXPECT_THAT(message, HasSubstr("says 100 tokens, so the file should be 1224 bytes"));
    EXPECT_THAT(message, HasSubstr("but it is 1214 bytes (truncated file)"));
    // A header cut short.
    std::filesystem::resize_file(dir / "x.bin", 500);
    EXPECT_THAT(open_error(dir / "x.bin"),
                HasSubstr("the header needs 1024 bytes, the file has 500 bytes"));
}

TEST(IoTokenShard, TokenCountLargerThanTheFileOrTrailingBytes) {
    TempDir dir;
    write_file_atomic(dir / "x.bin", bin_bytes(kShardMagic, 1, 1'000'000, 20));
    EXPECT_THAT(open_error(dir / "x.bin"),
                HasSubstr("says 1000000 tokens, so the file should be 2001024 bytes"));
    write_file_atomic(dir / "y.bin", bin_bytes(kShardMagic, 1, 10, 21));
    EXPECT_THAT(open_error(dir / "y.bin"), HasSubstr("(trailing bytes)"));
    write_file_atomic(dir / "z.bin", bin_bytes(kShardMagic, 1, -5, 0));
    EXPECT_THAT(open_error(dir / "z.bin"), HasSubstr("negative token count -5"));
}

TEST(IoTokenShard, NpyWithWrongDtype) {
    TempDir dir;
    const std::vector<int32_t> ints = {1, 2, 3};
    write_npy_raw(dir / "x.npy", "<i4", ints.data(), {3});
    EXPECT_THAT(open_error(dir / "x.npy"), HasSubstr("has dtype '<i4', expected '<u2'"));
    const std::vector<float> floats = {1, 2};
    write_npy(dir / "f.npy", floats.data(), {2});
    EXPECT_THAT(open_error(dir / "f.npy"), HasSubstr("'<f4'"));
}

TEST(IoTokenShard, NpyTwoDimensional) {
    TempDir dir;
    const auto tokens = sample_tokens(6);
    write_npy(dir / "x.npy", tokens.data(), {2, 3});
    EXPECT_THAT(open_error(dir / "x.npy"), HasSubstr("has 2 dimensions, expected a 1-D array"));
}

TEST(IoTokenShard, NpyFortranOrder) {
    TempDir dir;
    const auto tokens = sample_tokens(6);
    write_npy_raw(dir / "x.npy", "<u2", tokens.data(), {6}, /*fortran_order=*/true);
    EXPECT_THAT(open_error(dir / "x.npy"), HasSubstr("Fortran order"));
}

TEST(IoTokenShard, TruncatedNpy) {
    TempDir dir;
    const auto tokens = sample_tokens(100);
    write_npy(dir / "x.npy", tokens.data(), {100});
    std::filesystem::resize_file(dir / "x.npy", 128 + 150);
    EXPECT_THAT(open_error(dir / "x.npy"),
                HasSubstr("100 tokens needs 200 bytes of data, found 150 bytes (truncated file)"));
    std::filesystem::resize_file(dir / "x.npy", 40);  // inside the header
    EXPECT_THAT(open_error(dir / "x.npy"), HasSubstr("truncated .npy file"));
}

TEST(IoTokenShard, EmptyFile) {
    TempDir dir;
    write_file_atomic(dir / "x.bin", "");
    EXPECT_THAT(open_error(dir / "x.bin"), HasSubstr("empty file"));
}

TEST(IoTokenShard, NonexistentFile) {
    TempDir dir;
    EXPECT_THAT(open_error(dir / "missing.bin"), HasSubstr("No such file or directory"));
}

// ---- list_token_shards

class IoTokenShardList : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto tokens = sample_tokens(4);
        for (const char* name : {"train_000002.bin", "train_000001.bin", "val_000000.bin",
                                 "train_000003.npy", "notes.txt", ".hidden.bin"}) {
            write_file_atomic(dir_ / name, "x");
        }
        std::filesystem::create_directory(dir_ / "sub.bin");  // a folder is never a shard
    }
    std::vector<std::string> names(const std::vector<std::filesystem::path>& paths) {
        std::vector<std::string> out;
        for (const auto& p : paths) out.push_back(p.filename().string());
        return out;
    }
    TempDir dir_;
};

TEST_F(IoTokenShardList, SingleFile) {
    const auto found = list_token_shards((dir_ / "notes.txt").string());
    EXPECT_EQ(found, std::vector<std::filesystem::path>{dir_ / "notes.txt"});
}

TEST_F(IoTokenShardList, FolderListsBinAndNpySorted) {
    const auto found = list_token_shards(dir_.path().string());
    EXPECT_EQ(names(found), (std::vector<std::string>{"train_000001.bin", "train_000002.bin",
                                                      "train_000003.npy", "val_000000.bin"}));
    EXPECT_EQ(found[0], dir_ / "train_000001.bin");
}

TEST_F(IoTokenShardList, GlobInTheFileName) {
    EXPECT_EQ(
        names(list_token_shards((dir_ / "train_*").string())),
        (std::vector<std::string>{"train_000001.bin", "train_000002.bin", "train_000003.npy"}));
    EXPECT_EQ(names(list_token_shards((dir_ / "*_00000?.bin").string())),
              (std::vector<std::string>{"train_000001.bin", "train_000002.bin", "val_000000.bin"}));
    // A wildcard does not match the leading dot of hidden (e.g. temporary) files.
    EXPECT_EQ(names(list_token_shards((dir_ / "*.bin").string())),
              (std::vector<std::string>{"train_000001.bin", "train_000002.bin", "val_000000.bin"}));
}

TEST_F(IoTokenShardList, Errors) {
    EXPECT_THAT(error_message([&] { list_token_shards((dir_ / "test_*.bin").string()); }),
                HasSubstr("matches no files"));
    EXPECT_THAT(error_message([&] { list_token_shards((dir_ / "*" / "a.bin").string()); }),
                HasSubstr("wildcards are only allowed in the file-name part"));
    EXPECT_THAT(error_message([&] { list_token_shards((dir_ / "nope" / "*.bin").string()); }),
                HasSubstr("does not exist"));
    EXPECT_THAT(error_message([&] { list_token_shards((dir_ / "absent.bin").string()); }),
                HasSubstr("shard file " + (dir_ / "absent.bin").string() + " does not exist"));
    std::filesystem::create_directory(dir_ / "empty");
    EXPECT_THAT(error_message([&] { list_token_shards((dir_ / "empty").string()); }),
                HasSubstr("holds no .bin or .npy files"));
    EXPECT_THAT(error_message([&] { list_token_shards(""); }), HasSubstr("empty shard pattern"));
}

}  // namespace
}  // namespace greenmoe

// Tests of .npy reading and writing (io/npy.h): layout, round trips, NumPy-written fixtures,
// malformed headers, and NumPy itself reading what we write (when it is installed).
#include "greenmoe/io/npy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "greenmoe/core/error.h"
#include "greenmoe/io/atomic_file.h"
#include "test_support.h"

namespace greenmoe {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
using testing::TempDir;

std::filesystem::path fixture(const std::string& name) {
    return std::filesystem::path(GREENMOE_SOURCE_DIR) / "tests" / "fixtures" / "npy" / name;
}

// A version 1.0 file from a header dict text, padded to 64 bytes, and raw data.
std::string npy_v1(const std::string& dict, const std::string& data) {
    std::string header = dict;
    header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    std::string bytes = "\x93NUMPY\x01";
    bytes += '\0';
    bytes += static_cast<char>(header.size() & 0xff);
    bytes += static_cast<char>(header.size() >> 8);
    return bytes + header + data;
}

TEST(IoNpy, HeaderLayoutMatchesNumpy) {
    TempDir dir;
    const std::vector<float> values = {1, 2, 3, 4, 5, 6};
    write_npy(dir / "a.npy", values.data(), {2, 3});
    const std::string bytes = read_file(dir / "a.npy");
    ASSERT_EQ(bytes.size(), 128u + 24u);
    EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
    const size_t header_len =
        static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    EXPECT_EQ(10 + header_len, 128u);  // data 64-byte aligned
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    EXPECT_EQ(bytes.substr(10, dict.size()), dict);
    EXPECT_EQ(bytes[127], '\n');
    EXPECT_EQ(bytes.substr(10 + dict.size(), 127 - 10 - dict.size()),
              std::string(127 - 10 - dict.size(), ' '));
    EXPECT_EQ(std::memcmp(bytes.data() + 128, values.data(), 24), 0);
}

TEST(IoNpy, ShapeTuplesAsPythonWritesThem) {
    TempDir dir;
    const double x = 2.5;
    write_npy(dir / "scalar.npy", &x, {});
    EXPECT_NE(read_file(dir / "scalar.npy").find("'shape': (), }"), std::string::npos);
    write_npy(dir / "vec.npy", &x, {1});
    EXPECT_NE(read_file(dir / "vec.npy").find("'shape': (1,), }"), std::string::npos);
}

TEST(IoNpy, RoundTripFloatDoubleAndUint16) {
    TempDir dir;
    std::vector<float> f(2 * 3 * 4);
    for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) * 0.25f - 3.0f;
    write_npy(dir / "f.npy", f.data(), {2, 3, 4});
    const NpyArray a = read_npy(dir / "f.npy");
    EXPECT_EQ(a.descr, "<f4");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3, 4}));
    EXPECT_EQ(a.numel(), 24);
    ASSERT_EQ(a.data.size(), 96u);
    EXPECT_EQ(std::memcmp(a.data.data(), f.data(), 96), 0);
    EXPECT_EQ(a.to_f32(), f);

    const std::vector<double> d = {1e-300, -7.0, 3.25};
    write_npy(dir / "d.npy", d.data(), {3});
    const NpyArray b = read_npy(dir / "d.npy");
    EXPECT_EQ(b.descr, "<f8");
    EXPECT_EQ(b.shape, std::vector<int64_t>{3});
    EXPECT_EQ(std::memcmp(b.data.data(), d.data(), 24), 0);
    EXPECT_EQ(b.to_f32(), (std::vector<float>{0.0f, -7.0f, 3.25f}));

    const std::vector<uint16_t> u = {0, 1, 65535};
    write_npy(dir / "u.npy", u.data(), {3, 1});
    const NpyArray c = read_npy(dir / "u.npy");
    EXPECT_EQ(c.descr, "<u2");
    EXPECT_EQ(c.shape, (std::vector<int64_t>{3, 1}));
    EXPECT_EQ(std::memcmp(c.data.data(), u.data(), 6), 0);
    EXPECT_THAT(error_message([&] { c.to_f32(); }), HasSubstr("'<u2' cannot be read as float32"));

    write_npy(dir / "empty.npy", static_cast<const float*>(nullptr), {0, 4});
    const NpyArray e = read_npy(dir / "empty.npy");
    EXPECT_EQ(e.shape, (std::vector<int64_t>{0, 4}));
    EXPECT_TRUE(e.data.empty());
}

TEST(IoNpy, ReadsNumpyWrittenFixtures) {
    // Written by tools/fixtures/make_npy_fixtures.py with np.save.
    const NpyArray m = read_npy(fixture("matrix_f32.npy"));
    EXPECT_EQ(m.descr, "<f4");
    EXPECT_EQ(m.shape, (std::vector<int64_t>{3, 4}));
    const std::vector<float> values = m.to_f32();
    ASSERT_EQ(values.size(), 12u);
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 4; ++j) {
            EXPECT_EQ(values[i * 4 + j], 0.5f * static_cast<float>(4 * i + j) - 1.25f);
        }
    }
    const NpyArray t = read_npy(fixture("tokens_u16.npy"));
    EXPECT_EQ(t.descr, "<u2");
    EXPECT_EQ(t.shape, std::vector<int64_t>{1000});
    uint16_t token_7 = 0;
    std::memcpy(&token_7, t.data.data() + 14, 2);
    EXPECT_EQ(token_7, (7 * 7919 + 50256) % 50257);

    EXPECT_THAT(error_message([] { read_npy(fixture("matrix_f32_fortran.npy")); }),
                HasSubstr("Fortran-order .npy arrays are not supported (shape [3, 4])"));
}

TEST(IoNpy, ReadsVersion2And3Headers) {
    TempDir dir;
    for (const char version : {'\x02', '\x03'}) {
        std::string header = "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }";
        header.append((64 - (12 + header.size() + 1) % 64) % 64, ' ');
        header += '\n';
        std::string bytes = "\x93NUMPY";
        bytes += version;
        bytes += '\0';
        bytes += static_cast<char>(header.size());
        bytes.append(3, '\0');
        bytes += header;
        bytes += std::string("\x05\x00\x06\x00", 4);
        write_file_atomic(dir / "v.npy", bytes);
        const NpyArray a = read_npy(dir / "v.npy");
        EXPECT_EQ(a.shape, std::vector<int64_t>{2});
        EXPECT_EQ(a.data.size(), 4u);
        EXPECT_EQ(static_cast<int>(a.data[2]), 6);
    }
}

class IoNpyMalformed : public ::testing::Test {
  protected:
    std::string error_for(const std::string& bytes) {
        write_file_atomic(path_, bytes);
        const std::string message = error_message([&] { read_npy(path_); });
        EXPECT_THAT(message, HasSubstr(path_.string()));
        return message;
    }
    TempDir dir_;
    std::filesystem::path path_ = dir_ / "bad.npy";
};

TEST_F(IoNpyMalformed, BadMagicVersionOrLength) {
    EXPECT_THAT(error_for("\x93NUMPZ\x01" + std::string(100, ' ')), HasSubstr("not a .npy file"));
    EXPECT_THAT(error_for(std::string("\x93NUMPY\x09\x00\x10\x00", 10) + std::string(16, ' ')),
                HasSubstr("unsupported .npy format version 9.0"));
    EXPECT_THAT(error_for("\x93NUMPY"), HasSubstr("too short to be a .npy file (6 bytes"));
    EXPECT_THAT(error_for(std::string("\x93NUMPY\x01\x00\xff\x00{}", 12)),
                HasSubstr("the header claims 255 bytes but only 2 follow"));
}

TEST_F(IoNpyMalformed, BadHeaderDict) {
    const std::string f4 = "'descr': '<f4', 'fortran_order': False, ";
    EXPECT_THAT(error_for(npy_v1("{" + f4 + "'shape': (1,), 'extra': 1, }", "abcd")),
                HasSubstr("unexpected key 'extra'"));
    EXPECT_THAT(error_for(npy_v1("{'descr': '<f4', 'fortran_order': False, }", "")),
                HasSubstr("lacks 'shape'"));
    EXPECT_THAT(error_for(npy_v1("{" + f4 + "'shape': (-1,), }", "")),
                HasSubstr("'shape' must be a tuple of non-negative integers"));
    EXPECT_THAT(error_for(npy_v1("{'descr': [('a', '<f4')], 'fortran_order': False, "
                                 "'shape': (1,), }",
                                 "abcd")),
                HasSubstr("structured dtypes"));
    EXPECT_THAT(
        error_for(npy_v1("{'descr': '<f4', 'fortran_order': maybe, 'shape': (1,), }", "abcd")),
        HasSubstr("'fortran_order' must be True or False"));
    EXPECT_THAT(error_for(npy_v1("['descr', '<f4']", "")), HasSubstr("not a valid dict"));
    EXPECT_THAT(error_for(npy_v1("{" + f4 + "'shape': (1,), } junk", "abcd")),
                HasSubstr("trailing text"));
}

TEST_F(IoNpyMalformed, UnsupportedDtypes) {
    EXPECT_THAT(
        error_for(npy_v1("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "abcd")),
        HasSubstr("big-endian .npy dtype '>f4'"));
    EXPECT_THAT(
        error_for(npy_v1("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "abcdefgh")),
        HasSubstr("unsupported .npy dtype '|O'"));
}

TEST_F(IoNpyMalformed, DataLengthDiffersFromShape) {
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
    EXPECT_THAT(error_for(npy_v1(dict, std::string(12, '\0'))),
                HasSubstr(".npy data is 12 bytes but shape [2, 2] of '<f4' needs 16 bytes "
                          "(truncated file)"));
    EXPECT_THAT(error_for(npy_v1(dict, std::string(20, '\0'))),
                HasSubstr(".npy data is 20 bytes but shape [2, 2] of '<f4' needs 16 bytes"));
}

TEST(IoNpy, WriteRejectsBadArguments) {
    TempDir dir;
    const float x = 1;
    EXPECT_THAT(error_message([&] { write_npy(dir / "a.npy", &x, {-1}); }),
                HasSubstr("invalid .npy shape [-1]"));
    EXPECT_THAT(error_message([&] { write_npy_raw(dir / "a.npy", "<x4", &x, {1}); }),
                HasSubstr("unsupported .npy dtype '<x4'"));
    EXPECT_FALSE(std::filesystem::exists(dir / "a.npy"));
}

TEST(IoNpy, NumpyLoadsWhatWeWrite) {
    const std::string python = "/usr/bin/python3";
    if (!std::filesystem::exists(python) ||
        testing::run_command(python + " -c 'import numpy'").exit_code != 0) {
        GTEST_SKIP() << "no " << python << " with numpy";
    }
    TempDir dir;
    std::vector<float> f(3 * 5);
    for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) / 8.0f - 1.0f;
    write_npy(dir / "f.npy", f.data(), {3, 5});
    const std::vector<double> d = {0.1, -1e200, 3.0};
    write_npy(dir / "d.npy", d.data(), {3, 1, 1});
    const std::vector<uint16_t> u = {50256, 0, 65535, 7};
    write_npy(dir / "u.npy", u.data(), {4});
    const float scalar = -0.5f;
    write_npy(dir / "s.npy", &scalar, {});

    const std::string script = R"(
import sys, numpy as np
d = sys.argv[1]
f = np.load(d + '/f.npy')
assert f.dtype == np.float32 and f.shape == (3, 5) and f.flags['C_CONTIGUOUS'], f
assert np.array_equal(f, np.arange(15, dtype=np.float32).reshape(3, 5) / 8 - 1), f
x = np.load(d + '/d.npy')
assert x.dtype == np.float64 and x.shape == (3, 1, 1), x
assert list(x.ravel()) == [0.1, -1e200, 3.0], x
u = np.load(d + '/u.npy')
assert u.dtype == np.uint16 and list(u) == [50256, 0, 65535, 7], u
s = np.load(d + '/s.npy')
assert s.shape == () and s.dtype == np.float32 and float(s) == -0.5, s
print('NUMPY_OK')
)";
    testing::write_text_file(dir / "check.py", script);
    const auto result = testing::run_command(python + " " + (dir / "check.py").string() + " " +
                                             dir.path().string());
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_THAT(result.output, HasSubstr("NUMPY_OK"));
}

}  // namespace
}  // namespace greenmoe

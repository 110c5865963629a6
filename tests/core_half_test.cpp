// Tests of the F16 / BF16 conversions in core/half.h: known values, ties to even, exhaustive
// checks.
#include "greenmoe/core/half.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace greenmoe {
namespace {

// The conversions are constexpr; these would fail the build if they were wrong.
static_assert(f32_to_f16(1.0f) == 0x3c00);
static_assert(f16_to_f32(0xc100) == -2.5f);
static_assert(f32_to_bf16(1.0f) == 0x3f80);

float from_bits(uint32_t bits) {
    return std::bit_cast<float>(bits);
}

bool is_f16_nan(uint16_t h) {
    return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
}
bool is_bf16_nan(uint16_t h) {
    return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0;
}

TEST(HalfF16, KnownValuesToFloat) {
    EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
    EXPECT_EQ(f16_to_f32(0xc100), -2.5f);
    EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
    EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));                  // smallest subnormal
    EXPECT_EQ(f16_to_f32(0x03ff), 1023.0f * std::ldexp(1.0f, -24));        // largest subnormal
    EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));                  // smallest normal
    EXPECT_EQ(f16_to_f32(0x3555), 0.25f + 0x155 * std::ldexp(1.0f, -12));  // ≈ 1/3
    EXPECT_EQ(f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
    EXPECT_EQ(f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
    EXPECT_TRUE(std::isnan(f16_to_f32(0x7c01)));  // signalling-style NaN stays NaN
    EXPECT_EQ(f16_to_f32(0x8000), 0.0f);
    EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
    EXPECT_TRUE(std::signbit(f16_to_f32(0x8001)));
}

TEST(HalfF16, KnownValuesFromFloat) {
    EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
    EXPECT_EQ(f32_to_f16(-2.5f), 0xc100);
    EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
    EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
    EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);
    EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
    EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
    EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
    EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00);
    EXPECT_TRUE(is_f16_nan(f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
    // A NaN whose payload lies only in bits F16 drops must not become infinity.
    EXPECT_TRUE(is_f16_nan(f32_to_f16(from_bits(0x7f800001))));
    EXPECT_TRUE(is_f16_nan(f32_to_f16(from_bits(0xff800001))));
}

TEST(HalfF16, RoundsTiesToEvenAndOverflows) {
    const float ulp_at_one = std::ldexp(1.0f, -10);
    EXPECT_EQ(f32_to_f16(1.0f + ulp_at_one / 2), 0x3c00);      // tie, 0x3c00 is even
    EXPECT_EQ(f32_to_f16(1.0f + 3 * ulp_at_one / 2), 0x3c02);  // tie, 0x3c02 is even
    EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + ulp_at_one / 2, 2.0f)), 0x3c01);
    EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
    EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // the tie above 65504 rounds to infinity
    EXPECT_EQ(f32_to_f16(-65520.0f), 0xfc00);
    EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);
    EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::max()), 0x7c00);
    // Subnormal ties: 2^-25 lies between 0 and the smallest subnormal, 3·2^-25 between 1 and 2.
    EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);
    EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -25)), 0x8000);
    EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
    EXPECT_EQ(f32_to_f16(3 * std::ldexp(1.0f, -25)), 0x0002);
    EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -30)), 0x0000);
    EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
    // Just below the smallest normal rounds up into it.
    EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -14), 0.0f)), 0x0400);
}

TEST(HalfF16, EveryValueRoundTrips) {
    for (uint32_t h = 0; h <= 0xffff; ++h) {
        const auto half = static_cast<uint16_t>(h);
        const float f = f16_to_f32(half);
        if (is_f16_nan(half)) {
            ASSERT_TRUE(std::isnan(f)) << h;
            ASSERT_TRUE(is_f16_nan(f32_to_f16(f))) << h;
        } else {
            ASSERT_EQ(f32_to_f16(f), half) << h;
        }
    }
}

TEST(HalfF16, EveryMidpointRoundsToEven) {
    // Between each pair of neighbouring positive values: the midpoint goes to the even one,
    // anything off the midpoint to the nearer one. Midpoints are exact in float.
    for (uint16_t h = 0; h < 0x7bff; ++h) {
        const float lo = f16_to_f32(h), hi = f16_to_f32(static_cast<uint16_t>(h + 1));
        const float mid = lo + (hi - lo) / 2;  // lo + hi would overflow at the top
        const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : h;
        ASSERT_EQ(f32_to_f16(mid), even) << h;
        ASSERT_EQ(f32_to_f16(std::nextafter(mid, 0.0f)), h) << h;
        ASSERT_EQ(f32_to_f16(std::nextafter(mid, hi)), h + 1) << h;
        ASSERT_EQ(f32_to_f16(-mid), even | 0x8000) << h;
    }
}

TEST(HalfBf16, KnownValues) {
    EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
    EXPECT_EQ(bf16_to_f32(0xc020), -2.5f);
    EXPECT_EQ(bf16_to_f32(0x0001), std::ldexp(1.0f, -133));   // smallest subnormal
    EXPECT_EQ(bf16_to_f32(0x7f7f), std::ldexp(255.0f, 120));  // largest finite
    EXPECT_EQ(bf16_to_f32(0x7f80), std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(bf16_to_f32(0x7fc0)));
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(f32_to_bf16(-2.5f), 0xc020);
    EXPECT_EQ(f32_to_bf16(std::ldexp(1.0f, -133)), 0x0001);
    EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
    EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds past the top
    EXPECT_TRUE(is_bf16_nan(f32_to_bf16(std::numeric_limits<float>::quiet_NaN())));
    // Plain truncation would turn these NaNs into infinities.
    EXPECT_TRUE(is_bf16_nan(f32_to_bf16(from_bits(0x7f800001))));
    EXPECT_TRUE(is_bf16_nan(f32_to_bf16(from_bits(0xff80ffff))));
    EXPECT_TRUE(std::signbit(bf16_to_f32(f32_to_bf16(from_bits(0xff800001)))));
}

TEST(HalfBf16, RoundsTiesToEven) {
    const float ulp_at_one = std::ldexp(1.0f, -7);
    EXPECT_EQ(f32_to_bf16(1.0f + ulp_at_one / 2), 0x3f80);
    EXPECT_EQ(f32_to_bf16(1.0f + 3 * ulp_at_one / 2), 0x3f82);
    EXPECT_EQ(f32_to_bf16(std::nextafter(1.0f + ulp_at_one / 2, 2.0f)), 0x3f81);
    EXPECT_EQ(f32_to_bf16(-(1.0f + 3 * ulp_at_one / 2)), 0xbf82);
}

TEST(HalfBf16, EveryValueRoundTripsAndEveryMidpointRoundsToEven) {
    for (uint32_t h = 0; h <= 0xffff; ++h) {
        const auto b = static_cast<uint16_t>(h);
        const float f = bf16_to_f32(b);
        if (is_bf16_nan(b)) {
            ASSERT_TRUE(std::isnan(f)) << h;
            ASSERT_TRUE(is_bf16_nan(f32_to_bf16(f))) << h;
        } else {
            ASSERT_EQ(f32_to_bf16(f), b) << h;
        }
    }
    for (uint16_t h = 0; h < 0x7f7f; ++h) {
        const float lo = bf16_to_f32(h), hi = bf16_to_f32(static_cast<uint16_t>(h + 1));
        const float mid = lo + (hi - lo) / 2;  // lo + hi would overflow at the top
        const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : h;
        ASSERT_EQ(f32_to_bf16(mid), even) << h;
        ASSERT_EQ(f32_to_bf16(std::nextafter(mid, 0.0f)), h) << h;
        ASSERT_EQ(f32_to_bf16(std::nextafter(mid, hi)), h + 1) << h;
    }
}

}  // namespace
}  // namespace greenmoe

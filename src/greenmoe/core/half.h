// IEEE half (F16) and bfloat16 (BF16) conversions to and from float, bit-exact.
#pragma once

#include <bit>
#include <cstdint>

namespace greenmoe {

// Every F16 value is exactly representable as a float, so this conversion is exact.
constexpr float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    const uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) {
        // Zero or subnormal: mantissa × 2^-24, exact in float (10-bit integer times a power of 2).
        const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
        return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | sign);
    }
    if (exponent == 0x1f) {
        // Infinity or NaN; a NaN keeps its payload (shifted into the top mantissa bits).
        return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
    }
    return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// BF16 is the top half of a float.
constexpr float bf16_to_f32(uint16_t h) {
    return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// Round to nearest, ties to even. NaN stays NaN (quieted, so truncating the payload can
// never turn it into infinity); values past the BF16 range round to infinity.
constexpr uint16_t f32_to_bf16(float f) {
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        return static_cast<uint16_t>((bits >> 16) | 0x0040u);
    }
    const uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

// Round to nearest, ties to even, with overflow to infinity (from 65520 up, the tie
// above 65504) and correctly rounded subnormals. NaN stays NaN (quiet, top payload bits kept).
constexpr uint16_t f32_to_f16(float f) {
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) {
        return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    }
    if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
    const uint32_t exponent = magnitude >> 23;
    if (exponent < 113) {
        // F16 subnormal (or zero): the result is round(|f| × 2^24), below 2^-25 it is 0.
        if (exponent < 102) return sign;
        const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - exponent;  // 14..24
        uint32_t result = significand >> shift;
        const uint32_t remainder = significand & ((1u << shift) - 1u);
        const uint32_t half = 1u << (shift - 1);
        if (remainder > half || (remainder == half && (result & 1u))) ++result;
        return static_cast<uint16_t>(sign | result);  // 0x400 (smallest normal) is right too
    }
    uint32_t result = ((exponent - 112u) << 10) | ((magnitude & 0x7fffffu) >> 13);
    const uint32_t remainder = magnitude & 0x1fffu;
    // A carry out of the mantissa correctly bumps the exponent; the check above keeps it
    // below infinity.
    if (remainder > 0x1000u || (remainder == 0x1000u && (result & 1u))) ++result;
    return static_cast<uint16_t>(sign | result);
}

}  // namespace greenmoe

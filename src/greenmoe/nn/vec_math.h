// 8-wide float vectors (GCC vector extensions) and the exp / tanh / reductions built on
// them that the ops' inner loops use.
//
// Why explicit vectors: GCC does not vectorise a loop that calls a branch-free exp with an
// input clamp unless -fno-trapping-math is given (the clamp gets jump-threaded into
// paths it may not speculate), and the library expf only vectorises under -ffast-math,
// which would also license reordering the reductions we keep in a fixed order. The vector
// extension compiles to AVX registers with -mavx and to pairs of SSE registers otherwise.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace greenmoe::nn {

using Vec8 = float __attribute__((vector_size(32)));
using Vec8i = int32_t __attribute__((vector_size(32)));
using Vec4d = double __attribute__((vector_size(32)));

inline Vec8 load8(const float* p) {
    Vec8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline void store8(float* p, Vec8 v) {
    std::memcpy(p, &v, sizeof v);
}

inline Vec8 splat8(float s) {
    return Vec8{s, s, s, s, s, s, s, s};
}

// Loads n < 8 floats, the other lanes set to fill.
inline Vec8 load_partial8(const float* p, int n, float fill) {
    Vec8 v = splat8(fill);
    for (int i = 0; i < n; ++i) v[i] = p[i];
    return v;
}

inline void store_partial8(float* p, Vec8 v, int n) {
    for (int i = 0; i < n; ++i) p[i] = v[i];
}

// Horizontal reductions in a fixed order (results do not depend on anything but the lanes).
inline float hsum8(Vec8 v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}
inline double hsum4d(Vec4d v) {
    return (v[0] + v[2]) + (v[1] + v[3]);
}
inline Vec8 max8(Vec8 a, Vec8 b) {
    return a < b ? b : a;
}
inline float hmax8(Vec8 v) {
    float m = v[0];
    for (int i = 1; i < 8; ++i) m = m < v[i] ? v[i] : m;
    return m;
}

// Adds the 8 lanes of v, widened to double, into two 4-lane double accumulators.
inline void accumulate_double(Vec4d& lo, Vec4d& hi, Vec8 v) {
    lo += __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3), Vec4d);
    hi += __builtin_convertvector(__builtin_shufflevector(v, v, 4, 5, 6, 7), Vec4d);
}

// exp(x) per lane with ~1 ulp error for x in [-87, 88]; inputs outside are clamped (so the
// result is never 0 or inf). Cephes-style: x = n·ln2 + r, |r| ≤ ln2/2, minimax polynomial
// for exp(r), then scale by 2^n built in the exponent bits.
inline Vec8 exp8(Vec8 x) {
    const Vec8 lo = splat8(-87.0f);
    const Vec8 hi = splat8(88.0f);
    x = x < lo ? lo : x;
    x = x > hi ? hi : x;
    // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick; its integer value
    // also sits in the low mantissa bits of `shifted`.
    constexpr float kRound = 12582912.0f;
    const Vec8 shifted = x * 1.44269504088896341f + kRound;
    const Vec8 n = shifted - kRound;
    // r = x - n·ln2 with ln2 split in two so the product is exact enough.
    Vec8 r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    Vec8 p = splat8(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const Vec8i ni = std::bit_cast<Vec8i>(shifted) - std::bit_cast<int32_t>(kRound);
    return p * std::bit_cast<Vec8>((ni + 127) << 23);
}

// tanh(x) = 1 - 2 / (exp(2x) + 1); absolute error ~1e-7, which is what GELU needs (its
// output multiplies tanh by x/2, so relative accuracy near 0 does not matter).
inline Vec8 tanh8(Vec8 x) {
    return 1.0f - 2.0f / (exp8(2.0f * x) + 1.0f);
}

// Scalar versions through the vector code, so a loop's tail gets exactly what its body
// would have computed.
inline float exp_approx(float x) {
    return exp8(splat8(x))[0];
}
inline float tanh_approx(float x) {
    return tanh8(splat8(x))[0];
}

}  // namespace greenmoe::nn

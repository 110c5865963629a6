// Counter-based random numbers: a value is a pure function of (key, counter), never of
// thread count or call order, so parallel loops and resumed runs draw the same numbers.
#pragma once

#include <cmath>
#include <cstdint>

namespace greenmoe {

// SplitMix64's finaliser: a bijective 64-bit mixer with full avalanche.
inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Combines the parts of a key (seed, step, layer, token, ...) into one 64-bit key.
inline uint64_t rng_key(uint64_t a, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0) {
    uint64_t k = mix64(a + 0x9e3779b97f4a7c15ULL);
    k = mix64(k ^ (b + 0x632be59bd9b4e019ULL));
    k = mix64(k ^ (c + 0x85157af5a5a3c6a1ULL));
    return mix64(k ^ (d + 0x2545f4914f6cdd1dULL));
}

// The counter-th 64-bit value of the stream named by key.
inline uint64_t rng_u64(uint64_t key, uint64_t counter) {
    return mix64(key ^ mix64(counter * 0x9e3779b97f4a7c15ULL + 0x7f4a7c159e3779b9ULL));
}

// Uniform in [0, 1) with 24 random bits (exactly representable as float).
inline float rng_uniform(uint64_t key, uint64_t counter) {
    return static_cast<float>(rng_u64(key, counter) >> 40) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller over two counters (2*counter, 2*counter+1).
inline float rng_normal(uint64_t key, uint64_t counter) {
    // 53-bit uniforms in (0, 1]: log(0) must not happen.
    const double u1 = (static_cast<double>(rng_u64(key, 2 * counter) >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = static_cast<double>(rng_u64(key, 2 * counter + 1) >> 11) * 0x1.0p-53;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

// A sequential generator over a counter-based stream; its whole state is (key, counter),
// which is what checkpoints store to resume it exactly.
struct Rng {
    uint64_t key = 0;
    uint64_t counter = 0;

    uint64_t next_u64() { return rng_u64(key, counter++); }
    float uniform() { return rng_uniform(key, counter++); }
    float normal() { return rng_normal(key, counter++); }
};

}  // namespace greenmoe

// CPython's random.Random, bit for bit, for the parts lm-evaluation-harness's few-shot
// sampler uses: seeding from an integer, getrandbits, _randbelow and Random.sample.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace greenmoe::tasks {

// The Mersenne Twister MT19937 state and CPython's algorithms on top of it
// (Modules/_randommodule.c, Lib/random.py), so that a prompt built here with seed s holds the
// same few-shot examples as the harness's `random.Random(s)` picks.
class PythonRandom {
  public:
    // random.Random(seed) for a non-negative integer seed: init_by_array over its 32-bit
    // words, least significant first (one word 0 for seed 0).
    explicit PythonRandom(uint64_t seed);

    // random.getrandbits(k) for 0 < k <= 64.
    uint64_t getrandbits(int k);
    // Random._randbelow(n): getrandbits(n.bit_length()) until the value is below n (0 for n 0).
    uint64_t randbelow(uint64_t n);
    // Random.sample(range(n), k): the indices of k distinct elements of a sequence of n,
    // in the order Python returns them (its pool algorithm for small n, its set-rejection
    // algorithm above the set-size threshold). Requires k <= n.
    std::vector<size_t> sample(size_t n, size_t k);
    // random.random(): 53-bit float in [0, 1).
    double random();

  private:
    uint32_t genrand_uint32();
    void init_genrand(uint32_t s);
    void init_by_array(const std::vector<uint32_t>& key);

    std::array<uint32_t, 624> mt_{};
    int mti_ = 625;
};

}  // namespace greenmoe::tasks

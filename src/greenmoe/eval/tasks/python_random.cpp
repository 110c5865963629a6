// CPython's Mersenne Twister and Random.sample, reproduced exactly.
#include "greenmoe/eval/tasks/python_random.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <unordered_set>

#include "greenmoe/core/error.h"

namespace greenmoe::tasks {

namespace {
constexpr int kN = 624;
constexpr int kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU;
constexpr uint32_t kUpperMask = 0x80000000U;
constexpr uint32_t kLowerMask = 0x7fffffffU;
}  // namespace

PythonRandom::PythonRandom(uint64_t seed) {
    // random_seed() in _randommodule.c: the absolute value's 32-bit words, little end first,
    // at least one word.
    std::vector<uint32_t> key;
    do {
        key.push_back(static_cast<uint32_t>(seed & 0xffffffffU));
        seed >>= 32;
    } while (seed != 0);
    init_by_array(key);
}

void PythonRandom::init_genrand(uint32_t s) {
    mt_[0] = s;
    for (int i = 1; i < kN; ++i) {
        mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
    }
    mti_ = kN;
}

void PythonRandom::init_by_array(const std::vector<uint32_t>& key) {
    init_genrand(19650218U);
    int i = 1;
    size_t j = 0;
    const size_t key_length = key.size();
    for (size_t k = std::max<size_t>(kN, key_length); k > 0; --k) {
        mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] +
                 static_cast<uint32_t>(j);
        ++i;
        ++j;
        if (i >= kN) {
            mt_[0] = mt_[kN - 1];
            i = 1;
        }
        if (j >= key_length) j = 0;
    }
    for (int k = kN - 1; k > 0; --k) {
        mt_[i] =
            (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - static_cast<uint32_t>(i);
        ++i;
        if (i >= kN) {
            mt_[0] = mt_[kN - 1];
            i = 1;
        }
    }
    mt_[0] = 0x80000000U;
}

uint32_t PythonRandom::genrand_uint32() {
    if (mti_ >= kN) {
        int kk = 0;
        for (; kk < kN - kM; ++kk) {
            const uint32_t y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
            mt_[kk] = mt_[kk + kM] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
        }
        for (; kk < kN - 1; ++kk) {
            const uint32_t y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
            mt_[kk] = mt_[kk + (kM - kN)] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
        }
        const uint32_t y = (mt_[kN - 1] & kUpperMask) | (mt_[0] & kLowerMask);
        mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ ((y & 1U) ? kMatrixA : 0U);
        mti_ = 0;
    }
    uint32_t y = mt_[mti_++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= (y >> 18);
    return y;
}

uint64_t PythonRandom::getrandbits(int k) {
    check(k > 0 && k <= 64, "getrandbits: {} bits is outside 1..64", k);
    if (k <= 32) return genrand_uint32() >> (32 - k);
    // Words fill from the least significant end; the last one keeps its top bits.
    const uint64_t low = genrand_uint32();
    const uint64_t high = genrand_uint32() >> (64 - k);
    return low | (high << 32);
}

uint64_t PythonRandom::randbelow(uint64_t n) {
    if (n == 0) return 0;
    const int k = std::bit_width(n);  // n.bit_length(), not (n-1)'s: n may be 1
    uint64_t r = getrandbits(k);
    while (r >= n) r = getrandbits(k);
    return r;
}

double PythonRandom::random() {
    const uint32_t a = genrand_uint32() >> 5;
    const uint32_t b = genrand_uint32() >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

std::vector<size_t> PythonRandom::sample(size_t n, size_t k) {
    check(k <= n, "Sample larger than population: {} > {}", k, n);
    std::vector<size_t> result(k);
    // Lib/random.py: a set costs more than a list copy below this size.
    size_t setsize = 21;
    if (k > 5) {
        const double exponent = std::ceil(std::log(static_cast<double>(k * 3)) / std::log(4.0));
        setsize += size_t{1} << (2 * static_cast<int>(exponent));
    }
    if (n <= setsize) {
        std::vector<size_t> pool(n);
        for (size_t i = 0; i < n; ++i) pool[i] = i;
        for (size_t i = 0; i < k; ++i) {
            const size_t j = randbelow(n - i);
            result[i] = pool[j];
            pool[j] = pool[n - i - 1];
        }
    } else {
        std::unordered_set<size_t> selected;
        for (size_t i = 0; i < k; ++i) {
            size_t j = randbelow(n);
            while (selected.count(j) != 0) j = randbelow(n);
            selected.insert(j);
            result[i] = j;
        }
    }
    return result;
}

}  // namespace greenmoe::tasks

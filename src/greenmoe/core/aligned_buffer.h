// A heap block of floats aligned for SIMD, allocated once and never resized.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace greenmoe {

class AlignedBuffer {
  public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(size_t count) { reset(count); }

    void reset(size_t count) {
        size_ = count;
        if (count == 0) {
            data_.reset();
            return;
        }
        // 64-byte alignment: one cache line, one AVX-512 vector.
        const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
        void* p = std::aligned_alloc(64, bytes);
        if (!p) throw std::bad_alloc();
        data_.reset(static_cast<float*>(p));
        std::memset(p, 0, bytes);
    }

    float* data() { return data_.get(); }
    const float* data() const { return data_.get(); }
    size_t size() const { return size_; }
    void zero() {
        if (size_) std::memset(data_.get(), 0, size_ * sizeof(float));
    }

  private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> data_;
    size_t size_ = 0;
};

}  // namespace greenmoe

// When an op's loop is worth a thread team: below these sizes starting one costs more than
// it saves (and on an oversubscribed machine a team can wait a whole time slice).
#pragma once

#include <cstddef>

namespace greenmoe::nn {

// Elements touched by a memory-bound loop.
inline constexpr size_t kParallelMinElements = size_t{1} << 14;
// Multiply-adds of a compute-bound loop.
inline constexpr size_t kParallelMinFlops = size_t{1} << 19;

inline bool worth_parallel(size_t elements) {
    return elements >= kParallelMinElements;
}

}  // namespace greenmoe::nn

// The machine's memory, and refusing work that cannot fit in it before allocating.
#pragma once

#include <cstdint>
#include <string>

namespace greenmoe {

// Physical memory of this machine in bytes (0 when unknown).
uint64_t physical_memory_bytes();

// Throws Error "<what> needs N GiB, this machine has M GiB (<hint>)" when `bytes` exceeds
// the machine's physical memory; does nothing when that is unknown.
void check_fits_in_memory(double bytes, const std::string& what, const std::string& hint);

}  // namespace greenmoe

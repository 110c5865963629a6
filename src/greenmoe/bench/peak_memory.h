// This process's peak resident memory (VmHWM), and resetting it between models.
#pragma once

namespace greenmoe {

// VmHWM of /proc/self/status in bytes; 0 where it cannot be read.
double peak_rss_now();

// Resets VmHWM to the current resident size (writes "5" to /proc/self/clear_refs, Linux ≥ 4.0),
// so that the next peak_rss_now() is the peak of what follows. False where the kernel refuses
// (then the peak stays the process's peak so far).
bool reset_peak_rss();

}  // namespace greenmoe

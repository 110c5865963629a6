// SIGINT / SIGTERM as a request to stop at the next safe point; a second one ends at once.
#pragma once

namespace greenmoe {

// While an object lives, the first SIGINT or SIGTERM is only recorded (signal() returns
// it) so that a long job can finish its step and save; a second one ends the process at
// once with status 128 + its number. The previous handlers come back at destruction.
// One object at a time per process (signal dispositions are process-wide).
class StopSignals {
  public:
    StopSignals();
    ~StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    // The signal received (SIGINT, SIGTERM), 0 while none came.
    int signal() const;
};

// "SIGINT", "SIGTERM", else "signal N".
const char* signal_name(int signal);

}  // namespace greenmoe

// Learning-rate schedule: linear warm-up, then cosine decay to a floor (build-nanogpt).
#pragma once

#include <cmath>
#include <cstdint>

namespace greenmoe {

struct LrSchedule {
    float max_lr = 6e-4f;
    float min_lr_ratio = 0.1f;  // decays to 10 % of max_lr
    int64_t warmup_steps = 0;
    int64_t decay_steps = 0;  // step at which the floor is reached (usually max_steps)
    // Warm-up from 0 (step / warmup_steps), as Hugging Face's schedulers do, rather than
    // build-nanogpt's (step + 1) / warmup_steps.
    bool warmup_from_zero = false;

    float at(int64_t step) const {
        const float min_lr = max_lr * min_lr_ratio;
        if (step < warmup_steps) {
            const int64_t done = warmup_from_zero ? step : step + 1;
            return max_lr * static_cast<float>(done) / static_cast<float>(warmup_steps);
        }
        if (step >= decay_steps || decay_steps <= warmup_steps) return min_lr;
        const double ratio = static_cast<double>(step - warmup_steps) /
                             static_cast<double>(decay_steps - warmup_steps);
        const double coeff = 0.5 * (1.0 + std::cos(3.14159265358979323846 * ratio));
        return static_cast<float>(min_lr + coeff * (max_lr - min_lr));
    }
};

}  // namespace greenmoe

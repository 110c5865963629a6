// The middle of the simplify pipeline: what the criterion reads (a calibration pass), and
// per layer the experts it keeps at the target (--keep, --factor or --reduce).
#pragma once

#include <optional>
#include <vector>

#include "greenmoe/moeits/calibration.h"
#include "greenmoe/moeits/simplify.h"

namespace greenmoe::moeits {

// --keep N cannot keep more experts than a layer has: a typo (--keep 80 for 8) would
// otherwise "prune" to an unchanged copy.
void check_keep_fits(const SimplifyOptions& options, const MoeModel& model);

// The calibration statistics the criterion needs (nullopt when it needs none): Hugging Face
// models through the HF engine, greenmoe checkpoints through greenmoe's (frequency, ean and
// reap; naee's reconstruction statistics are Hugging Face only).
std::optional<Calibration> calibrate_for(const SimplifyOptions& options, const MoeModel& model,
                                         const ExpertCriterion& criterion);

// Per layer: the experts the criterion keeps. The count is --keep N (never below top-k), or
// how many MoEITS's rule keeps at the factor (given, or found for --reduce; Ms needed then).
std::vector<LayerOutcome> choose_experts(const SimplifyOptions& options, const MoeModel& model,
                                         const std::vector<std::vector<double>>& Ms,
                                         const std::vector<bool>& reused,
                                         const Calibration* calibration,
                                         const std::optional<double>& factor);

}  // namespace greenmoe::moeits

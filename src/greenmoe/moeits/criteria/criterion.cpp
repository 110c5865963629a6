// Criterion names, the factory and what every score criterion shares (see criterion.h).
#include "greenmoe/moeits/criteria/criterion.h"

#include <algorithm>
#include <numeric>

#include "greenmoe/core/error.h"

namespace greenmoe::moeits {

// Each criterion is defined in its own file.
std::unique_ptr<ExpertCriterion> make_moeits_criterion();
std::unique_ptr<ExpertCriterion> make_naee_criterion();
std::unique_ptr<ExpertCriterion> make_score_criterion(Criterion c);

Criterion parse_criterion(const std::string& name) {
    if (name == "moeits" || name == "nmi") return Criterion::Nmi;
    if (name == "random") return Criterion::Random;
    if (name == "router-norm") return Criterion::RouterNorm;
    if (name == "frequency") return Criterion::Frequency;
    if (name == "ean") return Criterion::Ean;
    if (name == "reap") return Criterion::Reap;
    if (name == "naee") return Criterion::Naee;
    usage_fail(
        "--criterion: unknown criterion '{}' (expected moeits (or nmi), random, router-norm, "
        "frequency, ean, reap or naee)",
        name);
}

const char* criterion_name(Criterion c) {
    switch (c) {
        case Criterion::Nmi:
            return "moeits";
        case Criterion::Random:
            return "random";
        case Criterion::RouterNorm:
            return "router-norm";
        case Criterion::Frequency:
            return "frequency";
        case Criterion::Ean:
            return "ean";
        case Criterion::Reap:
            return "reap";
        case Criterion::Naee:
            return "naee";
    }
    return "?";
}

std::unique_ptr<ExpertCriterion> make_criterion(Criterion c) {
    if (c == Criterion::Nmi) return make_moeits_criterion();
    if (c == Criterion::Naee) return make_naee_criterion();
    return make_score_criterion(c);
}

std::vector<int> keep_highest(const std::vector<double>& score, int count) {
    check(count >= 0 && static_cast<size_t>(count) <= score.size(), "cannot keep {} of {} experts",
          count, score.size());
    std::vector<int> order(score.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return score[size_t(a)] > score[size_t(b)]; });
    std::vector<int> kept(order.begin(), order.begin() + count);
    std::sort(kept.begin(), kept.end());
    return kept;
}

LayerChoice ExpertCriterion::choose(const LayerContext& context, int count) const {
    LayerChoice c;
    c.scores = scores(context);
    c.kept = keep_highest(c.scores, count);
    return c;
}

std::vector<double> ExpertCriterion::scores(const LayerContext&) const {
    fail("criterion {} chooses sets of experts and gives no score per expert",
         criterion_name(kind()));
}

}  // namespace greenmoe::moeits

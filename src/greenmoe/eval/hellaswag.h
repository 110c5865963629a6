// HellaSwag scoring in the two published styles: nanoGPT / llm.c's completion style and
// lm-evaluation-harness's log-likelihood style.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "greenmoe/eval/hellaswag_data.h"
#include "greenmoe/model/gpt.h"
#include "greenmoe/text/gpt2_tokenizer.h"

namespace greenmoe {

// One item's numbers. Each ending is scored as tokens(context) + tokens(" " + ending), the
// loss of a token being −log softmax over the real vocabulary.
//  - completion style (nanoGPT's hellaswag.py, on raw_context / raw_endings): sum_loss and
//    mean_loss over the ending's tokens; pred = argmin sum, pred_norm = argmin mean.
//  - harness style (on context / endings): loglik = −(sum of the losses); harness_pred =
//    argmax loglik, harness_pred_norm = argmax loglik / (the ending's length in characters,
//    Unicode code points as Python's len).
// Ties go to the lower index (numpy's argmin / argmax).
struct HellaSwagScore {
    std::array<double, 4> sum_loss{}, mean_loss{};
    std::array<int, 4> ending_tokens{};
    std::array<double, 4> loglik{};
    std::array<int, 4> ending_chars{};
    int pred = -1, pred_norm = -1, harness_pred = -1, harness_pred_norm = -1;
    bool truncated = false;  // the context lost its first tokens to fit block_size
};

struct HellaSwagResult {
    int64_t items = 0;
    int64_t correct = 0, correct_norm = 0;                  // completion style
    int64_t harness_correct = 0, harness_correct_norm = 0;  // harness style
    int64_t truncated = 0;
    double seconds = 0.0;
    std::vector<HellaSwagScore> scores;  // per item, in input order

    double acc() const { return fraction(correct); }
    double acc_norm() const { return fraction(correct_norm); }
    double harness_acc() const { return fraction(harness_correct); }
    double harness_acc_norm() const { return fraction(harness_correct_norm); }

  private:
    double fraction(int64_t n) const { return items > 0 ? double(n) / double(items) : 0.0; }
};

// Completes an item's score once sum_loss, ending_tokens, loglik and truncated are set: mean
// losses, ending lengths in characters, the four predictions (both styles, both
// normalisations); and counts the item into `result`. Shared by every model kind.
void finish_hellaswag_score(const HellaSwagItem& item, HellaSwagScore& s, HellaSwagResult& result);

struct HellaSwagOptions {
    int items_per_batch = 16;     // items scored together (their 4 endings each)
    int max_batch_tokens = 2048;  // new positions per forward (bounds the logits buffer)
    bool progress = false;        // a progress bar on stderr
    // Called after each batch with (items done, items in all).
    std::function<void(int64_t, int64_t)> on_batch;
};

// Scores every item. A context and its ending must fit block_size: a longer context loses
// its first tokens (as lm-evaluation-harness truncates on the left); an ending of
// block_size tokens or more keeps its first block_size − 1. Each item's context runs once
// and its key/value cache is shared by the four endings. Routing is evaluation mode
// without capacity limits: an item's scores do not depend on the batch.
HellaSwagResult evaluate_hellaswag(const GptModel& model, const Gpt2Tokenizer& tokenizer,
                                   const std::vector<HellaSwagItem>& items,
                                   const HellaSwagOptions& options = {});

}  // namespace greenmoe

// Cross-entropy of the LM head over a loss mask, as a sum of token losses (DESIGN §5: the caller
// divides by the global count of trained tokens).
#pragma once

#include <cstdint>

namespace steerlm::kernels {

// In place: logits (N, V) become softmax probabilities on rows with mask != 0 (other rows are
// left as they are). Returns sum over rows of mask * (logsumexp - logit[target]), in f64,
// summed in row order.
template <typename T>
double cross_entropy_forward(T* logits, const int32_t* targets, const float* mask, int64_t rows,
                             int64_t vocab);

// In place: probabilities (N, V) from the forward become d(scale * loss sum)/d logits
// = scale * mask * (p - onehot(target)); rows with mask == 0 become zero.
template <typename T>
void cross_entropy_backward(T* probs, const int32_t* targets, const float* mask, int64_t rows,
                            int64_t vocab, T scale);

}  // namespace steerlm::kernels

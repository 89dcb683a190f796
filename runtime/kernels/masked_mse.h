// Masked MSE of the attribute head (DESIGN §1): per sequence, the summed squared error over the
// attributes present divided by how many are present; a target of -100 is missing. The batch
// loss is the mean over sequences with at least one attribute, returned as a sum and a count.
#pragma once

#include <cstdint>

namespace steerlm::kernels {

constexpr float kMissingAttribute = -100.0f;

struct MaskedMseSums {
  double sum = 0;     // sum over sequences of their masked MSE
  int64_t count = 0;  // sequences with at least one attribute present
};

// predictions (S, A), targets (S, A). grad (S, A) = d(sum)/d predictions (0 where missing).
template <typename T>
MaskedMseSums masked_mse(const T* predictions, const float* targets, int64_t sequences,
                         int64_t attributes, T* grad);

}  // namespace steerlm::kernels

// AdamW update of one parameter (decoupled weight decay, as torch.optim.AdamW):
//   g = grad * grad_scale            (grad_scale carries global-norm clipping)
//   w -= lr * weight_decay * w
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   w -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
#pragma once

#include <cstdint>

namespace steerlm::kernels {

struct AdamWHyper {
  double lr = 0;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0;  // 0 for norms and biases
  int64_t step = 1;         // t, 1-based, for the bias corrections
  double grad_scale = 1;
};

template <typename T>
void adamw_update(T* weight, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
                  const AdamWHyper& hyper);

// Sum of squares of n values in f64, over fixed blocks summed in order (thread-count
// independent, so grad norms are bit-reproducible).
template <typename T>
double sum_of_squares(const T* values, int64_t n);

}  // namespace steerlm::kernels

#include "runtime/kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/kernels/threading.h"

namespace steerlm::kernels {

template <typename T>
double cross_entropy_forward(T* logits, const int32_t* targets, const float* mask, int64_t rows,
                             int64_t vocab) {
  std::vector<double> row_loss(rows, 0.0);  // (N), summed in order below for determinism
#pragma omp parallel for schedule(static) if (rows * vocab > kMinParallelWork)
  for (int64_t row = 0; row < rows; ++row) {
    if (mask[row] == 0.0f) continue;
    T* x = logits + row * vocab;
    const T max_logit = *std::max_element(x, x + vocab);
    T total = 0;
    const T target_logit = x[targets[row]];
    for (int64_t i = 0; i < vocab; ++i) {
      x[i] = std::exp(x[i] - max_logit);
      total += x[i];
    }
    const T inv_total = T(1) / total;
    for (int64_t i = 0; i < vocab; ++i) x[i] *= inv_total;
    const double log_sum_exp =
        static_cast<double>(max_logit) + std::log(static_cast<double>(total));
    row_loss[row] = mask[row] * (log_sum_exp - static_cast<double>(target_logit));
  }
  double sum = 0;
  for (int64_t row = 0; row < rows; ++row) sum += row_loss[row];
  return sum;
}

template <typename T>
void cross_entropy_backward(T* probs, const int32_t* targets, const float* mask, int64_t rows,
                            int64_t vocab, T scale) {
#pragma omp parallel for schedule(static) if (rows * vocab > kMinParallelWork)
  for (int64_t row = 0; row < rows; ++row) {
    T* p = probs + row * vocab;
    if (mask[row] == 0.0f) {
      std::fill(p, p + vocab, T(0));
      continue;
    }
    const T weight = scale * static_cast<T>(mask[row]);
    for (int64_t i = 0; i < vocab; ++i) p[i] *= weight;
    p[targets[row]] -= weight;
  }
}

template double cross_entropy_forward<float>(float*, const int32_t*, const float*, int64_t,
                                             int64_t);
template double cross_entropy_forward<double>(double*, const int32_t*, const float*, int64_t,
                                              int64_t);
template void cross_entropy_backward<float>(float*, const int32_t*, const float*, int64_t, int64_t,
                                            float);
template void cross_entropy_backward<double>(double*, const int32_t*, const float*, int64_t,
                                             int64_t, double);

}  // namespace steerlm::kernels

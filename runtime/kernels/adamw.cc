#include "runtime/kernels/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/kernels/threading.h"

namespace steerlm::kernels {

template <typename T>
void adamw_update(T* weight, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
                  const AdamWHyper& hyper) {
  const T lr = static_cast<T>(hyper.lr);
  const T beta1 = static_cast<T>(hyper.beta1), beta2 = static_cast<T>(hyper.beta2);
  const T eps = static_cast<T>(hyper.eps);
  const T decay = static_cast<T>(1.0 - hyper.lr * hyper.weight_decay);
  const T scale = static_cast<T>(hyper.grad_scale);
  const T bias1 = static_cast<T>(1.0 - std::pow(hyper.beta1, static_cast<double>(hyper.step)));
  const T bias2_sqrt =
      static_cast<T>(std::sqrt(1.0 - std::pow(hyper.beta2, static_cast<double>(hyper.step))));
#pragma omp parallel for simd schedule(static) if (n > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const T g = grad[i] * scale;
    exp_avg[i] = beta1 * exp_avg[i] + (T(1) - beta1) * g;
    exp_avg_sq[i] = beta2 * exp_avg_sq[i] + (T(1) - beta2) * g * g;
    const T denominator = std::sqrt(exp_avg_sq[i]) / bias2_sqrt + eps;
    weight[i] = weight[i] * decay - lr * (exp_avg[i] / bias1) / denominator;
  }
}

template <typename T>
double sum_of_squares(const T* values, int64_t n) {
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks, 0.0);  // (blocks)
#pragma omp parallel for schedule(static) if (n > kMinParallelWork)
  for (int64_t block = 0; block < blocks; ++block) {
    double sum = 0;
    const int64_t end = std::min(n, (block + 1) * kBlock);
    for (int64_t i = block * kBlock; i < end; ++i) {
      sum += static_cast<double>(values[i]) * static_cast<double>(values[i]);
    }
    partial[block] = sum;
  }
  double total = 0;
  for (double value : partial) total += value;
  return total;
}

template void adamw_update<float>(float*, const float*, float*, float*, int64_t, const AdamWHyper&);
template void adamw_update<double>(double*, const double*, double*, double*, int64_t,
                                   const AdamWHyper&);
template double sum_of_squares<float>(const float*, int64_t);
template double sum_of_squares<double>(const double*, int64_t);

}  // namespace steerlm::kernels

#include "runtime/kernels/masked_mse.h"

namespace steerlm::kernels {

template <typename T>
MaskedMseSums masked_mse(const T* predictions, const float* targets, int64_t sequences,
                         int64_t attributes, T* grad) {
  MaskedMseSums sums;
  for (int64_t s = 0; s < sequences; ++s) {
    const T* prediction = predictions + s * attributes;
    const float* target = targets + s * attributes;
    T* grad_row = grad + s * attributes;
    int64_t present = 0;
    for (int64_t a = 0; a < attributes; ++a) present += target[a] != kMissingAttribute;
    double squared_error = 0;
    for (int64_t a = 0; a < attributes; ++a) {
      if (target[a] == kMissingAttribute) {
        grad_row[a] = T(0);
        continue;
      }
      const T error = prediction[a] - static_cast<T>(target[a]);
      squared_error += static_cast<double>(error) * static_cast<double>(error);
      grad_row[a] = T(2) * error / static_cast<T>(present);
    }
    if (present == 0) continue;
    sums.sum += squared_error / static_cast<double>(present);
    sums.count += 1;
  }
  return sums;
}

template MaskedMseSums masked_mse<float>(const float*, const float*, int64_t, int64_t, float*);
template MaskedMseSums masked_mse<double>(const double*, const float*, int64_t, int64_t, double*);

}  // namespace steerlm::kernels

#include "runtime/kernels/rope.h"

#include <cmath>
#include <vector>

#include "runtime/kernels/threading.h"

namespace steerlm::kernels {

template <typename T>
void rope_apply(T* x, int64_t rows, int64_t heads, int64_t head_size, int64_t row_stride,
                const int32_t* positions, double theta, RopeDirection direction) {
  const int64_t half = head_size / 2;
  // Inverse frequencies in f64: the angle of a long position loses digits in f32.
  std::vector<double> inv_freq(half);  // (HS/2)
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_size));
  }
  const T sign = direction == RopeDirection::kForward ? T(1) : T(-1);

#pragma omp parallel for schedule(static) if (rows * heads * head_size > kMinParallelWork)
  for (int64_t row = 0; row < rows; ++row) {
    std::vector<T> cos_values(half), sin_values(half);  // (HS/2)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(positions[row]) * inv_freq[i];
      cos_values[i] = static_cast<T>(std::cos(angle));
      sin_values[i] = sign * static_cast<T>(std::sin(angle));
    }
    for (int64_t head = 0; head < heads; ++head) {
      T* first = x + row * row_stride + head * head_size;
      T* second = first + half;
      for (int64_t i = 0; i < half; ++i) {
        const T a = first[i];
        const T b = second[i];
        first[i] = a * cos_values[i] - b * sin_values[i];
        second[i] = b * cos_values[i] + a * sin_values[i];
      }
    }
  }
}

template void rope_apply<float>(float*, int64_t, int64_t, int64_t, int64_t, const int32_t*, double,
                                RopeDirection);
template void rope_apply<double>(double*, int64_t, int64_t, int64_t, int64_t, const int32_t*,
                                 double, RopeDirection);

}  // namespace steerlm::kernels

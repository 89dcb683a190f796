#include "runtime/kernels/swiglu.h"

#include <cmath>

#include "runtime/kernels/threading.h"

namespace steerlm::kernels {

template <typename T>
void swiglu_forward(const T* gate, const T* up, int64_t n, T* out) {
#pragma omp parallel for simd schedule(static) if (n > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const T sigmoid = T(1) / (T(1) + std::exp(-gate[i]));
    out[i] = gate[i] * sigmoid * up[i];
  }
}

template <typename T>
void swiglu_backward(const T* dout, const T* gate, const T* up, int64_t n, T* dgate, T* dup) {
#pragma omp parallel for simd schedule(static) if (n > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const T sigmoid = T(1) / (T(1) + std::exp(-gate[i]));
    const T silu = gate[i] * sigmoid;
    // d silu / dg = sigmoid * (1 + g * (1 - sigmoid)).
    dgate[i] = dout[i] * up[i] * sigmoid * (T(1) + gate[i] * (T(1) - sigmoid));
    dup[i] = dout[i] * silu;
  }
}

template void swiglu_forward<float>(const float*, const float*, int64_t, float*);
template void swiglu_forward<double>(const double*, const double*, int64_t, double*);
template void swiglu_backward<float>(const float*, const float*, const float*, int64_t, float*,
                                     float*);
template void swiglu_backward<double>(const double*, const double*, const double*, int64_t, double*,
                                      double*);

}  // namespace steerlm::kernels

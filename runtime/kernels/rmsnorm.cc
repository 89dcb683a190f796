#include "runtime/kernels/rmsnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/kernels/threading.h"

namespace steerlm::kernels {

template <typename T>
void rmsnorm_forward(const T* x, const T* weight, int64_t rows, int64_t channels, double eps,
                     T* out, T* rstd) {
#pragma omp parallel for schedule(static) if (rows * channels > kMinParallelWork)
  for (int64_t row = 0; row < rows; ++row) {
    const T* in = x + row * channels;
    T sum_sq = 0;
    for (int64_t c = 0; c < channels; ++c) sum_sq += in[c] * in[c];
    const T inv = T(1) / std::sqrt(sum_sq / static_cast<T>(channels) + static_cast<T>(eps));
    rstd[row] = inv;
    T* y = out + row * channels;
    for (int64_t c = 0; c < channels; ++c) y[c] = in[c] * inv * weight[c];
  }
}

template <typename T>
void rmsnorm_backward(const T* dout, const T* x, const T* weight, const T* rstd, int64_t rows,
                      int64_t channels, T* dx, T* dweight, bool accumulate_dx) {
  // dweight partial sums per fixed block of rows, then summed block by block.
  constexpr int64_t kRowBlock = 64;
  const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  std::vector<T> partial(blocks * channels, T(0));  // (blocks, C)

#pragma omp parallel for schedule(static) if (rows * channels > kMinParallelWork)
  for (int64_t block = 0; block < blocks; ++block) {
    T* block_dweight = partial.data() + block * channels;
    const int64_t end = std::min(rows, (block + 1) * kRowBlock);
    for (int64_t row = block * kRowBlock; row < end; ++row) {
      const T* in = x + row * channels;
      const T* grad = dout + row * channels;
      const T inv = rstd[row];
      // d xhat = dout * w; dx = inv * (d xhat - xhat * mean(d xhat * xhat)).
      T dot = 0;
      for (int64_t c = 0; c < channels; ++c) dot += grad[c] * weight[c] * in[c] * inv;
      const T mean_dot = dot / static_cast<T>(channels);
      T* out_grad = dx + row * channels;
      for (int64_t c = 0; c < channels; ++c) {
        const T xhat = in[c] * inv;
        const T value = inv * (grad[c] * weight[c] - xhat * mean_dot);
        out_grad[c] = accumulate_dx ? out_grad[c] + value : value;
        block_dweight[c] += grad[c] * xhat;
      }
    }
  }
  for (int64_t block = 0; block < blocks; ++block) {
    for (int64_t c = 0; c < channels; ++c) dweight[c] += partial[block * channels + c];
  }
}

template void rmsnorm_forward<float>(const float*, const float*, int64_t, int64_t, double, float*,
                                     float*);
template void rmsnorm_forward<double>(const double*, const double*, int64_t, int64_t, double,
                                      double*, double*);
template void rmsnorm_backward<float>(const float*, const float*, const float*, const float*,
                                      int64_t, int64_t, float*, float*, bool);
template void rmsnorm_backward<double>(const double*, const double*, const double*, const double*,
                                       int64_t, int64_t, double*, double*, bool);

}  // namespace steerlm::kernels

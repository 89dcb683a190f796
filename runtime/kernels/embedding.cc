#include "runtime/kernels/embedding.h"

#include <algorithm>

#include "runtime/kernels/threading.h"

namespace steerlm::kernels {

template <typename T>
void embedding_forward(const int32_t* tokens, int64_t n, const T* table, int64_t channels, T* out) {
#pragma omp parallel for schedule(static) if (n * channels > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    std::copy(table + tokens[i] * channels, table + (tokens[i] + 1) * channels, out + i * channels);
  }
}

template <typename T>
void embedding_backward(const int32_t* tokens, int64_t n, const T* dout, int64_t channels,
                        T* dtable) {
  // Split channels across threads: each thread owns whole columns, so no two threads touch
  // the same element and each element sums its tokens in order.
  constexpr int64_t kColumnBlock = 16;
  const int64_t blocks = (channels + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (n * channels > kMinParallelWork)
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t begin = block * kColumnBlock;
    const int64_t end = std::min(channels, begin + kColumnBlock);
    for (int64_t i = 0; i < n; ++i) {
      T* row = dtable + tokens[i] * channels;
      const T* grad = dout + i * channels;
      for (int64_t c = begin; c < end; ++c) row[c] += grad[c];
    }
  }
}

template void embedding_forward<float>(const int32_t*, int64_t, const float*, int64_t, float*);
template void embedding_forward<double>(const int32_t*, int64_t, const double*, int64_t, double*);
template void embedding_backward<float>(const int32_t*, int64_t, const float*, int64_t, float*);
template void embedding_backward<double>(const int32_t*, int64_t, const double*, int64_t, double*);

}  // namespace steerlm::kernels

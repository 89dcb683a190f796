#include "runtime/kernels/blas.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>

namespace steerlm::kernels {
namespace {

void gemm_serial(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k,
                 float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                 float* c, int64_t ldc) {
  gemm_f32(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_serial(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k,
                 double alpha, const double* a, int64_t lda, const double* b, int64_t ldb,
                 double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, transpose_a == Transpose::kYes ? CblasTrans : CblasNoTrans,
              transpose_b == Transpose::kYes ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b,
              ldb, beta, c, ldc);
}

}  // namespace

bool kernels_own_threads() {
  return openblas_get_num_threads() == 1 && omp_get_max_threads() > 1;
}

template <typename T>
void gemm(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k, T alpha,
          const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  // Small products, or already inside a parallel region: one call on this thread.
  constexpr int64_t kMinRowsPerThread = 64;
  if (omp_in_parallel() || m < 2 * kMinRowsPerThread || !kernels_own_threads()) {
    gemm_serial(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Split the rows of C into one contiguous block per thread (a fixed split for a fixed thread
  // count, so results are reproducible). Row i of op(A) starts at a + i * lda, or at a + i when
  // A is stored transposed (K, M).
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads();
    const int64_t block = (m + threads - 1) / threads;
    const int64_t begin = std::min(m, omp_get_thread_num() * block);
    const int64_t rows = std::min(m, begin + block) - begin;
    const T* a_rows = a + (transpose_a == Transpose::kYes ? begin : begin * lda);
    if (rows > 0) {
      gemm_serial(transpose_a, transpose_b, rows, n, k, alpha, a_rows, lda, b, ldb, beta,
                  c + begin * ldc, ldc);
    }
  }
}

template void gemm<float>(Transpose, Transpose, int64_t, int64_t, int64_t, float, const float*,
                          int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm<double>(Transpose, Transpose, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, const double*, int64_t, double, double*, int64_t);

template <typename T>
void linear_forward(const T* x, const T* weight, int64_t rows, int64_t in, int64_t out, T* y) {
  gemm<T>(Transpose::kNo, Transpose::kYes, rows, out, in, T(1), x, in, weight, in, T(0), y, out);
}

template <typename T>
void linear_backward(const T* dy, const T* x, const T* weight, int64_t rows, int64_t in,
                     int64_t out, T* dx, T* dweight, bool accumulate_dx) {
  if (dx != nullptr) {
    gemm<T>(Transpose::kNo, Transpose::kNo, rows, in, out, T(1), dy, out, weight, in,
            accumulate_dx ? T(1) : T(0), dx, in);
  }
  if (dweight != nullptr) {
    gemm<T>(Transpose::kYes, Transpose::kNo, out, in, rows, T(1), dy, out, x, in, T(1), dweight,
            in);
  }
}

template void linear_forward<float>(const float*, const float*, int64_t, int64_t, int64_t, float*);
template void linear_forward<double>(const double*, const double*, int64_t, int64_t, int64_t,
                                     double*);
template void linear_backward<float>(const float*, const float*, const float*, int64_t, int64_t,
                                     int64_t, float*, float*, bool);
template void linear_backward<double>(const double*, const double*, const double*, int64_t, int64_t,
                                      int64_t, double*, double*, bool);

}  // namespace steerlm::kernels

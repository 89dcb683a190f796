#include "runtime/kernels/blas.h"

#include <cblas.h>

namespace steerlm::kernels {

template <>
void gemm<float>(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k,
                 float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                 float* c, int64_t ldc) {
  gemm_f32(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <>
void gemm<double>(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k,
                  double alpha, const double* a, int64_t lda, const double* b, int64_t ldb,
                  double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, transpose_a == Transpose::kYes ? CblasTrans : CblasNoTrans,
              transpose_b == Transpose::kYes ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b,
              ldb, beta, c, ldc);
}

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

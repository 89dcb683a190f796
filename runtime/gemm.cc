#include "runtime/gemm.h"

#include <cblas.h>
#include <glog/logging.h>

namespace steerlm {
namespace {

CBLAS_TRANSPOSE to_cblas(Transpose transpose) {
  return transpose == Transpose::kYes ? CblasTrans : CblasNoTrans;
}

}  // namespace

void gemm_f32(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
              float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, to_cblas(transpose_a), to_cblas(transpose_b), m, n, k, alpha, a, lda,
              b, ldb, beta, c, ldc);
}

void gemm_strided_batched_f32(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n,
                              int64_t k, float alpha, const float* a, int64_t lda, int64_t stride_a,
                              const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                              int64_t ldc, int64_t stride_c, int64_t batch) {
  for (int64_t i = 0; i < batch; ++i) {
    gemm_f32(transpose_a, transpose_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
             beta, c + i * stride_c, ldc);
  }
}

void matmul(const Tensor& a, Transpose transpose_a, const Tensor& b, Transpose transpose_b,
            Tensor& c, float alpha, float beta) {
  CHECK(a.ndim() == 2 && b.ndim() == 2 && c.ndim() == 2)
      << "matmul takes 2-D tensors: " << a.shape().str() << " " << b.shape().str() << " "
      << c.shape().str();
  const int64_t m = transpose_a == Transpose::kYes ? a.dim(1) : a.dim(0);
  const int64_t k = transpose_a == Transpose::kYes ? a.dim(0) : a.dim(1);
  const int64_t k_b = transpose_b == Transpose::kYes ? b.dim(1) : b.dim(0);
  const int64_t n = transpose_b == Transpose::kYes ? b.dim(0) : b.dim(1);
  CHECK(k == k_b && c.dim(0) == m && c.dim(1) == n)
      << "matmul shapes do not agree: a " << a.shape().str() << ", b " << b.shape().str() << ", c "
      << c.shape().str();
  CHECK(a.device().is_cpu()) << "matmul on " << a.device().str()
                             << " is not implemented yet (CUDA path: runtime/cuda/)";
  gemm_f32(transpose_a, transpose_b, m, n, k, alpha, a.f32(), a.dim(1), b.f32(), b.dim(1), beta,
           c.f32(), c.dim(1));
}

}  // namespace steerlm

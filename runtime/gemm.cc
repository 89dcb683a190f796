#include "runtime/gemm.h"

#include <cblas.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "runtime/ops.h"

#ifdef STEERLM_HAVE_CUDA
#include "runtime/cuda/cublaslt_gemm.h"
#include "runtime/cuda/stream.h"
#endif

namespace steerlm {
namespace {

CBLAS_TRANSPOSE to_cblas(Transpose transpose) {
  return transpose == Transpose::kYes ? CblasTrans : CblasNoTrans;
}

// The (rows, cols) of op(X) for a stored (rows, cols) matrix.
struct OpDims {
  int64_t rows;
  int64_t cols;
};
OpDims op_dims(int64_t stored_rows, int64_t stored_cols, Transpose transpose) {
  if (transpose == Transpose::kYes) return {stored_cols, stored_rows};
  return {stored_rows, stored_cols};
}

// BLAS needs each leading dimension to cover a stored row; checked here because OpenBLAS only
// prints a warning and returns on a bad one.
void check_leading_dimensions(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n,
                              int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  CHECK_GE(lda, std::max<int64_t>(1, transpose_a == Transpose::kYes ? m : k)) << "gemm lda";
  CHECK_GE(ldb, std::max<int64_t>(1, transpose_b == Transpose::kYes ? k : n)) << "gemm ldb";
  CHECK_GE(ldc, std::max<int64_t>(1, n)) << "gemm ldc";
}

// The (M, N, K) of a tensor GEMM, after checking that the operands agree.
struct GemmDims {
  int64_t m, n, k;
};
GemmDims checked_dims(const char* op, const Tensor& a, Transpose transpose_a, const Tensor& b,
                      Transpose transpose_b, const Tensor& c) {
  const int rank = a.ndim();
  OpDims a_op = op_dims(a.dim(rank - 2), a.dim(rank - 1), transpose_a);  // (M, K)
  OpDims b_op = op_dims(b.dim(rank - 2), b.dim(rank - 1), transpose_b);  // (K, N)
  CHECK(a_op.cols == b_op.rows && c.dim(rank - 2) == a_op.rows && c.dim(rank - 1) == b_op.cols)
      << op << " shapes do not agree: a " << a.shape().str()
      << (transpose_a == Transpose::kYes ? "^T" : "") << ", b " << b.shape().str()
      << (transpose_b == Transpose::kYes ? "^T" : "") << ", c " << c.shape().str();
  CHECK(a.device() == b.device() && b.device() == c.device())
      << op << " operands on " << a.device().str() << ", " << b.device().str() << ", "
      << c.device().str();
  return {a_op.rows, b_op.cols, a_op.cols};
}

// The GEMM with K = 0 is C = beta * C (BLAS semantics: beta = 0 overwrites, even NaN).
void scale_for_empty_k(Tensor& c, float beta) {
  if (beta == 0.0f) {
    c.zero();
  } else if (c.dtype() == DType::kF32) {
    ops::scale(c, beta, c);
  } else {
    CHECK_EQ(beta, 1.0f) << "TODO(gemm): K = 0 with beta other than 0 or 1 on a bf16 output";
  }
}

// The tensor GEMM on either device; `batch` entries of (rows, cols) matrices, dense.
void tensor_gemm(const char* op, const Tensor& a, Transpose transpose_a, const Tensor& b,
                 Transpose transpose_b, Tensor& c, float alpha, float beta, int64_t batch) {
  // Shapes and dtypes.
  const GemmDims dims = checked_dims(op, a, transpose_a, b, transpose_b, c);
  const int64_t lda = a.dim(-1), ldb = b.dim(-1), ldc = c.dim(-1);
  const int64_t stride_a = a.numel() / std::max<int64_t>(batch, 1);
  const int64_t stride_b = b.numel() / std::max<int64_t>(batch, 1);
  const int64_t stride_c = c.numel() / std::max<int64_t>(batch, 1);
  if (dims.m == 0 || dims.n == 0 || batch == 0) return;
  if (dims.k == 0) return scale_for_empty_k(c, beta);

  // Host: OpenBLAS, f32.
  if (c.device().is_cpu()) {
    CHECK(a.dtype() == DType::kF32 && b.dtype() == DType::kF32 && c.dtype() == DType::kF32)
        << op << " on the host takes f32 (got " << dtype_name(a.dtype()) << ", "
        << dtype_name(b.dtype()) << ", " << dtype_name(c.dtype()) << ")";
    gemm_strided_batched_f32(transpose_a, transpose_b, dims.m, dims.n, dims.k, alpha, a.f32(), lda,
                             stride_a, b.f32(), ldb, stride_b, beta, c.f32(), ldc, stride_c, batch);
    return;
  }

  // CUDA: cuBLASLt on the current stream.
#ifdef STEERLM_HAVE_CUDA
  CHECK(a.dtype() == b.dtype()) << op << ": a is " << dtype_name(a.dtype()) << ", b is "
                                << dtype_name(b.dtype());
  cuda::LtGemmShape shape{transpose_a, transpose_b, dims.m,   dims.n, dims.k,    lda,      ldb, ldc,
                          stride_a,    stride_b,    stride_c, batch,  a.dtype(), c.dtype()};
  cuda::cublaslt_gemm(c.device(), shape, alpha, a.raw(), b.raw(), beta, c.raw(),
                      current_cuda_stream(c.device()));
#else
  LOG(FATAL) << op << " on " << c.device().str() << ", but this steerlm was built without CUDA";
#endif
}

}  // namespace

void gemm_f32(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
              float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  check_leading_dimensions(transpose_a, transpose_b, m, n, k, lda, ldb, ldc);
  cblas_sgemm(CblasRowMajor, to_cblas(transpose_a), to_cblas(transpose_b), m, n, k, alpha, a, lda,
              b, ldb, beta, c, ldc);
}

void gemm_strided_batched_f32(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n,
                              int64_t k, float alpha, const float* a, int64_t lda, int64_t stride_a,
                              const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                              int64_t ldc, int64_t stride_c, int64_t batch) {
  // OpenBLAS 0.3.21 has no cblas_sgemm_batch; each call is threaded inside OpenBLAS.
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
  tensor_gemm("matmul", a, transpose_a, b, transpose_b, c, alpha, beta, 1);
}

void matmul_batched(const Tensor& a, Transpose transpose_a, const Tensor& b, Transpose transpose_b,
                    Tensor& c, float alpha, float beta) {
  CHECK(a.ndim() == 3 && b.ndim() == 3 && c.ndim() == 3)
      << "matmul_batched takes 3-D tensors: " << a.shape().str() << " " << b.shape().str() << " "
      << c.shape().str();
  CHECK(a.dim(0) == b.dim(0) && b.dim(0) == c.dim(0))
      << "matmul_batched batch sizes differ: " << a.shape().str() << " " << b.shape().str() << " "
      << c.shape().str();
  tensor_gemm("matmul_batched", a, transpose_a, b, transpose_b, c, alpha, beta, a.dim(0));
}

double measure_sgemm_gflops(int64_t m, int64_t n, int64_t k, int repeats) {
  CHECK(m > 0 && n > 0 && k > 0 && repeats > 0)
      << "measure_sgemm_gflops(" << m << ", " << n << ", " << k << ", " << repeats << ")";
  // Values in [-1, 1) so that nothing overflows or goes denormal (which would be slower).
  std::vector<float> a(m * k), b(k * n), c(m * n);  // (M, K), (K, N), (M, N), cpu
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 251) / 125.5f - 1.0f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 241) / 120.5f - 1.0f;

  // Warm up (threads start, pages fault in), then time.
  gemm_f32(Transpose::kNo, Transpose::kNo, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(),
           n);
  const auto start = std::chrono::steady_clock::now();
  for (int repeat = 0; repeat < repeats; ++repeat) {
    gemm_f32(Transpose::kNo, Transpose::kNo, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f,
             c.data(), n);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return 2.0 * m * n * k * repeats / seconds / 1e9;
}

}  // namespace steerlm

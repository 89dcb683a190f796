// Matrix multiplication, row-major (the last dimension is contiguous).
//
//   C (M, N) = alpha * op(A) (M, K) @ op(B) (K, N) + beta * C
//
// op(X) is X or X^T. With Transpose::kYes, A is stored (K, M) and B is stored (N, K), which is how
// a Linear layer's weight W (out, in) is used: y = x @ W^T is gemm(kNo, kYes, ...).
// The host path is OpenBLAS sgemm; the CUDA path is cuBLASLt with bf16 inputs and fp32
// accumulation (runtime/cuda/).
#pragma once

#include <cstdint>

#include "runtime/tensor.h"

namespace steerlm {

enum class Transpose { kNo, kYes };

// Host f32 GEMM on raw pointers with explicit leading dimensions.
void gemm_f32(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
              float* c, int64_t ldc);

// Host f32 strided-batched GEMM: for i in [0, batch), C_i = alpha op(A_i) op(B_i) + beta C_i,
// where X_i = X + i * stride_x (strides in elements).
void gemm_strided_batched_f32(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n,
                              int64_t k, float alpha, const float* a, int64_t lda, int64_t stride_a,
                              const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                              int64_t ldc, int64_t stride_c, int64_t batch);

// Tensor GEMM on 2-D tensors, dispatching on the device. Shapes are checked:
//   a: (M, K) or (K, M) when transposed; b: (K, N) or (N, K) when transposed; c: (M, N).
// dtypes: cpu: f32 only. cuda: a and b bf16 with c bf16 or f32 (fp32 accumulation), or all f32.
// On CUDA it is queued on the thread's current stream (runtime/cuda/stream.h).
void matmul(const Tensor& a, Transpose transpose_a, const Tensor& b, Transpose transpose_b,
            Tensor& c, float alpha = 1.0f, float beta = 0.0f);

// Strided-batched tensor GEMM on 3-D tensors, c[i] = alpha op(a[i]) op(b[i]) + beta c[i]:
//   a: (batch, M, K) or (batch, K, M); b: (batch, K, N) or (batch, N, K); c: (batch, M, N).
// Same dtypes and devices as matmul.
void matmul_batched(const Tensor& a, Transpose transpose_a, const Tensor& b, Transpose transpose_b,
                    Tensor& c, float alpha = 1.0f, float beta = 0.0f);

// Host sgemm speed, GFLOP/s (2*M*N*K per call), with the current OpenBLAS thread count: the
// reference that benchmarks report against. One untimed warm-up call, then `repeats` timed ones.
double measure_sgemm_gflops(int64_t m, int64_t n, int64_t k, int repeats);

}  // namespace steerlm

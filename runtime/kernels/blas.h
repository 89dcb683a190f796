// Row-major GEMM templated on the scalar type, so every layer kernel runs in f32 for training
// and in f64 for the finite-difference gradient checks with the same code.
//
//   C (M, N) = alpha * op(A) (M, K) @ op(B) (K, N) + beta * C     (see runtime/gemm.h)
#pragma once

#include <cstdint>

#include "runtime/gemm.h"

namespace steerlm::kernels {

// True when OpenBLAS runs single-threaded and OpenMP has several threads: the kernels then
// own the parallelism (one thread pool, no OpenBLAS and OpenMP threads competing for cores):
// GEMMs split their rows across OpenMP threads and attention runs (batch, KV head) pairs in
// parallel. Call openblas_set_num_threads(1) at start-up to choose this mode.
bool kernels_own_threads();

template <typename T>
void gemm(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k, T alpha,
          const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// y (N, out) = x (N, in) @ W^T, W stored (out, in) as in a Linear layer.
template <typename T>
void linear_forward(const T* x, const T* weight, int64_t rows, int64_t in, int64_t out, T* y);

// dx (N, in) (+)= dy (N, out) @ W; dW (out, in) += dy^T @ x. accumulate_dx selects beta = 1.
template <typename T>
void linear_backward(const T* dy, const T* x, const T* weight, int64_t rows, int64_t in,
                     int64_t out, T* dx, T* dweight, bool accumulate_dx);

}  // namespace steerlm::kernels

// The CUDA GEMM: cuBLASLt with bf16 (or f32) inputs and fp32 accumulation (DESIGN §5).
//
// Described row-major exactly like the host gemm_strided_batched_f32 (runtime/gemm.h):
//   C_i (M, N) = alpha * op(A_i) (M, K) @ op(B_i) (K, N) + beta * C_i,  X_i = X + i * stride_x.
// Inputs are both bf16 (output bf16 or f32) or both f32 (output f32, exact fp32, no TF32).
// Each distinct shape (with the pointers' alignment) is planned once per device: the matmul
// descriptor, the layouts and the heuristic's algorithm are cached, and each stream gets its own
// workspace, so steady-state calls only launch. Most callers use matmul()/matmul_batched().
#pragma once

#ifdef STEERLM_HAVE_CUDA

#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/gemm.h"
#include "runtime/tensor.h"

namespace steerlm::cuda {

struct LtGemmShape {
  Transpose transpose_a = Transpose::kNo;
  Transpose transpose_b = Transpose::kNo;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;                 // row-major leading dimensions, in elements
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;  // between batch entries, in elements
  int64_t batch = 1;
  DType input_dtype = DType::kBF16;   // of A and B
  DType output_dtype = DType::kBF16;  // of C
};

// Queues the GEMM on `stream` on `device` (device pointers a, b, c).
void cublaslt_gemm(Device device, const LtGemmShape& shape, float alpha, const void* a,
                   const void* b, float beta, void* c, cudaStream_t stream);

// Plans made so far on `device` (each is one heuristic query); tests use it to see the cache work.
int64_t cublaslt_plan_count(Device device);

}  // namespace steerlm::cuda

#endif  // STEERLM_HAVE_CUDA
